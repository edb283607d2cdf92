"""The client page's view-models (services/client_page.py): labels, flags and actions, without HTTP."""

from __future__ import annotations

from datetime import date, timedelta

from extensions import db
from models import ConsentStatus, ContactRole, PersonKind, StaffRole, UserStatus
from services import archive, client_page
from services.consent import request_consent


def operations(groups, person_id: int) -> list[str]:
    for group in groups:
        for row in group.rows:
            if row.id == person_id:
                return [action.operation for action in row.actions]
    raise AssertionError(f"person {person_id} is not on the tab")


def test_the_overview_says_what_consent_is_at_and_who_can_be_asked(app, make_client, make_person):
    record = make_client(postal_country_code="SE", postal_city="Malmö")
    with app.test_request_context():
        model = client_page.overview(record)
        assert str(model.consent.label) == "Ikke forespurt" and not model.consent.can_send
        assert model.contact is None and model.can_edit and model.can_refresh
        assert model.company[4].lines == ["Malmö", "Sverige"]  # a foreign country is named
        assert [s.name for s in model.switches] == ["company_lookup_enabled", "custom_invoice_email_enabled"]
        assert [str(s.button) for s in model.switches] == ["Slå på", "Slå på"]

    contact = make_person(record, PersonKind.PERSON, first_name="Kari", email="kari@kunde.example")
    record.contact_person, record.contact_role = contact, ContactRole.CHAIR
    request_consent(db.session, record)
    db.session.commit()
    with app.test_request_context():
        model = client_page.overview(record)
        assert model.consent.status == "pending" and model.consent.asked_at is not None
        assert model.consent.can_send and str(model.consent.send_label) == "Send forespørsel om samtykke på nytt"
        assert str(model.contact.role) == "Styreleder" and model.contact.name.startswith("Kari")

    record.consent_status, record.consent_from = ConsentStatus.GIVEN, "192.0.2.7"
    record.consent_at = record.consent_requested_at
    db.session.commit()
    with app.test_request_context():
        model = client_page.overview(record)
        assert model.consent.answered_at is not None and "192.0.2.7" in str(model.consent.source)


def test_an_archived_client_offers_nothing_to_change(app, make_client, make_person):
    record = make_client()
    contact = make_person(record, PersonKind.PERSON, email="kari@kunde.example")
    record.contact_person = contact
    db.session.commit()
    archive.archive(db.session, record, actor=None)
    db.session.commit()
    with app.test_request_context():
        model = client_page.overview(record)
        assert not model.can_edit and not model.can_refresh and not model.consent.can_send
        header = client_page.header(record, archived=True)
        assert [str(label) for label, _css in header.badges] == ["arkivert"]


def test_the_people_tab_offers_only_what_the_policy_and_the_state_allow(
    app, bureau, make_client, make_person, make_user, make_staff
):
    staff = make_staff(bureau, StaffRole.STAFF)
    admin = make_staff(bureau, StaffRole.ADMIN)
    record = make_client()
    active = make_user(record)
    blocked = make_user(record, status=UserStatus.BLOCKED)
    external = make_user(record, PersonKind.EXTERNAL_USER, end_date=date.today() - timedelta(days=1))
    without = make_person(record, PersonKind.PERSON)
    today = date.today()
    with app.test_request_context():
        groups = client_page.people(db.session, record, actor=staff, today=today)
        assert [g.kind for g in groups] == [k.value for k in client_page.KIND_ORDER]
        assert operations(groups, active.person_id) == [
            "change_access",
            "remove_access",
            "deactivate",
            "archive",
        ]
        assert "reactivate" in operations(groups, blocked.person_id)
        assert "deactivate" not in operations(groups, blocked.person_id)
        assert "invite" not in operations(groups, blocked.person_id)  # a blocked user is not invitable
        assert operations(groups, without.id) == ["archive"]
        row = next(r for g in groups for r in g.rows if r.id == external.person_id)
        assert row.ended and row.end_date == today - timedelta(days=1)
        # a staff member's own access on a client (a bureau user) is the administrators' to change
        internal_row = client_page.people(db.session, staff.person.client, actor=staff, today=today)
        assert operations(internal_row, admin.person_id) == []
        assert "deactivate" in operations(
            client_page.people(db.session, staff.person.client, actor=admin, today=today), staff.person_id
        )
