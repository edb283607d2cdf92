"""The load run's saves (bench/load.py) are real saves: the form it parses is the one a person sends, and what it
sends is stored. Issue 9's load run once counted client "saves" that stopped at the redirect to the client page."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urljoin

from werkzeug.datastructures import MultiDict

from extensions import db
from models import Client, Person

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from load import BENCH_PHONE, FormFields  # noqa: E402


def send_edit_form(client, path: str) -> tuple[str, int]:
    """What the load run's save task does: open the edit form (following a redirect to the purpose-built form),
    toggle the phone and send the form to its own action. Returns the URL sent to and the answer's status."""
    form = client.get(path)
    if form.status_code in (301, 302, 303):
        path = urljoin(path, form.headers["Location"])
        form = client.get(path)
    assert form.status_code == 200
    parser = FormFields()
    parser.feed(form.get_data(as_text=True))
    fields = [(name, value) for name, value in parser.fields if name != "phone"]
    phone = dict(parser.fields).get("phone", "")
    fields.append(("phone", "" if phone == BENCH_PHONE else BENCH_PHONE))
    target = urljoin(path, parser.action) if parser.action else path
    return target, client.post(target, data=MultiDict(fields)).status_code


def test_a_client_save_goes_through_the_company_form_and_is_stored(client, login_as, make_client) -> None:
    login_as("staff")
    company = make_client(name="Lastprøve AS")
    target, status = send_edit_form(client, f"/admin/clients/edit/?id={company.id}&url=/admin/clients/")
    assert "/admin/clients/company/" in target and status == 302
    db.session.expire_all()
    assert db.session.get(Client, company.id).phone == BENCH_PHONE
    assert db.session.get(Client, company.id).name == "Lastprøve AS"  # every other field sent back unchanged
    send_edit_form(client, f"/admin/clients/edit/?id={company.id}&url=/admin/clients/")
    db.session.expire_all()
    assert not db.session.get(Client, company.id).phone  # toggled back: repeated runs do not drift


def test_a_person_save_is_stored(client, login_as, make_client, make_user) -> None:
    login_as("staff")
    person = make_user(make_client(name="Lastprøve 2 AS")).person
    target, status = send_edit_form(client, f"/admin/persons/edit/?id={person.id}&url=/admin/persons/")
    assert status == 302, target
    db.session.expire_all()
    assert db.session.get(Person, person.id).phone == BENCH_PHONE
