"""The request edge's one unit of work: commit once, or roll back and say why."""

from __future__ import annotations

import pytest
from flask import get_flashed_messages

from admin_views.unit_of_work import unit_of_work
from extensions import db
from models import Client
from services.errors import DomainError


class Refused(DomainError):
    pass


def stored_name(client_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Client, client_id).name


def test_a_finished_block_commits(app, make_client):
    record = make_client(name="Før AS")
    with app.test_request_context():
        with unit_of_work() as work:
            db.session.get(Client, record.id).name = "Etter AS"
        assert work.done and work.error is None
        db.session.rollback()  # nothing left to roll back: it was committed
    assert stored_name(record.id) == "Etter AS"


def test_a_domain_error_rolls_back_and_is_flashed(app, make_client):
    record = make_client(name="Før AS")
    with app.test_request_context():
        with unit_of_work() as work:
            db.session.get(Client, record.id).name = "Halvveis AS"
            db.session.flush()
            raise DomainError("Nei.")
        assert not work.done and str(work.error) == "Nei."
        assert get_flashed_messages(with_categories=True) == [("error", "Nei.")]
    assert stored_name(record.id) == "Før AS"


def test_a_quiet_error_is_kept_for_the_caller_and_not_flashed(app, make_client):
    record = make_client(name="Før AS")
    with app.test_request_context():
        with unit_of_work(quiet=(Refused,)) as work:
            db.session.get(Client, record.id).name = "Halvveis AS"
            raise Refused("Vis ved feltet.")
        assert isinstance(work.error, Refused) and not work.done
        assert get_flashed_messages() == []
    assert stored_name(record.id) == "Før AS"


def test_any_other_error_rolls_back_and_propagates(app, make_client):
    record = make_client(name="Før AS")
    with app.test_request_context():
        with pytest.raises(RuntimeError):
            with unit_of_work():
                db.session.get(Client, record.id).name = "Halvveis AS"
                db.session.flush()
                raise RuntimeError("a bug")
    assert stored_name(record.id) == "Før AS"
