"""The person and user grids."""

from __future__ import annotations

from datetime import date, timedelta

from flask import flash, redirect
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEmpty, FilterEqual
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import contains_eager, joinedload
from wtforms import BooleanField
from wtforms.validators import Optional

from admin_views.archive import ArchiveMixin
from admin_views.base import DateBetweenFilter, DateSmallerFilter, SearchFilter, SecureModelView, per_request
from admin_views.grant_access import GrantPackageMixin
from admin_views.labels import (
    INVITATION_STATE,
    PERSON_KIND,
    RESELLER_ROLE,
    STAFF_ROLE,
    USER_STATUS,
    choices,
    formatter,
)
from admin_views.unit_of_work import unit_of_work
from extensions import db
from forms.validators import EmailAddress
from models import (
    Client,
    InvitationState,
    OutboxMessage,
    Package,
    Person,
    PersonKind,
    User,
    UserStatus,
    utcnow,
)
from services import home, policy, search
from services.formats import format_moment
from services.invitations import InvitationReport, deactivate, invite_many, reactivate
from services.links import LinkKind, link_lifetime
from services.packages import holds_package_clause
from services.users import update_person, update_user


def _effective_status(user: User | None) -> object:
    """The status as it counts today: a user past the end date shows as blocked before block-expired ran."""
    return USER_STATUS.get(user.effective_status(date.today()), "") if user is not None else ""


def flash_invitation_report(report: InvitationReport) -> None:
    """One counted message, then each refusal with its reason."""
    flash(
        _("%(count)s invitation(s) sent.", count=len(report.invited)),
        "success" if not report.refused else "warning",
    )
    for _target, reason in report.refused:
        flash(reason, "error")


PERSON_LABELS = {
    "client": _l("Client"),
    "client.name": _l("Client"),
    "kind": _l("Kind"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "user": _l("User"),
    "user.status": _l("User status"),
    "created_at": _l("Created"),
    "archived_at": _l("Archived"),
}


def _actor() -> User:
    return current_user._get_current_object()


def _form_changes(view: SecureModelView, form) -> dict:
    """What the form posts, by field name: the lock and CSRF fields left out, and a field the request did not
    send at all left alone (an unchecked checkbox is sent as nothing, so it counts as posted)."""
    return {
        name: field.data
        for name, field in form._fields.items()
        if name not in view.populate_skip and (field.raw_data or isinstance(field, BooleanField))
    }


class PersonView(ArchiveMixin, SecureModelView):
    """People are added on the client page's Personer tab; here only names, e-mail and phone are edited."""

    can_create = False
    column_list = (
        "client.name",
        Person.kind,
        Person.first_name,
        Person.last_name,
        Person.email,
        Person.phone,
        "user.status",
    )
    column_labels = PERSON_LABELS
    column_formatters = {
        "kind": formatter("kind", PERSON_KIND),
        "user.status": lambda v, c, m, n: _effective_status(m.user),
    }
    column_formatters_detail = {"kind": formatter("kind", PERSON_KIND)}
    column_searchable_list = (Person.first_name, Person.last_name, Person.email, "client.name")
    search_in = search.PERSONS_BY_NAME_OR_CLIENT
    column_sortable_list = (
        ("client.name", "client.name"),
        Person.kind,
        Person.first_name,
        Person.last_name,
        Person.email,
    )
    column_default_sort = (Person.last_name, False)
    query_joins = (Person.client,)
    column_filters = (
        FilterEqual(Person.kind, _l("Kind"), options=choices(PERSON_KIND)),
        SearchFilter(Person.client_id, search.PERSONS_BY_CLIENT, _l("Client")),
        FilterEmpty(Person.email, _l("E-mail")),
    )
    column_details_exclude_list = ("version", "bureau", "user")
    form_columns = ("first_name", "last_name", "email", "phone")
    form_args = {"email": {"validators": [Optional(), EmailAddress()]}}

    def get_query(self):
        # The client's bureau is the person's (a composite foreign key), but saying so lets the planner start from
        # the clients' name index when the grid is sorted by client.
        return self.tenant_filter(
            db.session.query(Person)
            .join(Person.client)
            .filter(Client.bureau_id == current_user.bureau_id)
            .options(contains_eager(Person.client), joinedload(Person.user))
        )

    def get_count_query(self):
        return self.tenant_filter(super(SecureModelView, self).get_count_query())

    def populate(self, form, model: Person) -> None:
        """Every changed field asks the policy, compared with the stored row (``services.users``)."""
        update_person(db.session, model, _form_changes(self, form), actor=_actor())

    def on_model_delete(self, model: Person) -> None:
        from services.people import check_person_deletable

        policy.check(db.session, _actor(), policy.Verb.PERSON_ARCHIVE, model)
        check_person_deletable(db.session, model)

    @action(
        "invite",
        _l("Send invitation"),
        _l("Send an invitation e-mail to the selected people? Older links stop working."),
    )
    def action_invite(self, ids: list[str]) -> None:
        report = invite_many(db.session, self.selected(ids), actor=_actor())
        db.session.commit()
        flash_invitation_report(report)


class EffectiveStatusFilter(BaseSQLAFilter):
    """Status as it counts today: a user past the end date is blocked, even before block-expired ran."""

    def apply(self, query, value, alias=None):
        today = date.today()
        if value is UserStatus.BLOCKED:
            return query.filter(or_(User.status == UserStatus.BLOCKED, User.end_date < today))
        return query.filter(User.status == value, or_(User.end_date.is_(None), User.end_date >= today))

    def clean(self, value):
        return UserStatus(value)

    def operation(self):
        return _l("equals")


def _invitation(view, context, model: User, name: str):
    """The invitation column: state, and when it got there (sent, delivered to the mail server, accepted)."""
    state = model.invitation_state(utcnow(), link_lifetime(LinkKind.INVITATION))
    if state is InvitationState.DELIVERED:
        when = model.invitation_message.sent_at
    elif state is InvitationState.ACCEPTED:
        when = model.accepted_at
    else:
        when = model.invitation_sent_at
    label = Markup('<span class="invitation-state" data-state="{}">{}</span>').format(
        state.value, INVITATION_STATE[state]
    )
    if when is None:
        return label
    return Markup('{} <small class="text-muted">{}</small>').format(label, format_moment(when))


class ExpiresWithinFilter(BaseSQLAFilter):
    """Users whose end date falls within the next N days (default 30)."""

    def apply(self, query, value, alias=None):
        days = int(value)
        today = date.today()
        column = self.get_column(alias)
        return query.filter(column.is_not(None), column >= today, column <= today + timedelta(days=days))

    def clean(self, value):
        return int(value)

    def operation(self):
        return _l("within (days)")


class InvitationFilter(BaseSQLAFilter):
    """Invitations of invited users: still waiting after Hjem's number of days, or expired (services/home.py)."""

    WAITING, EXPIRED = "waiting", "expired"

    def apply(self, query, value, alias=None):
        now = utcnow()
        if value == self.WAITING:
            return query.filter(home.invitation_waiting_clause(now))
        return query.filter(home.invitation_expired_clause(now))

    def clean(self, value):
        if value not in (self.WAITING, self.EXPIRED):
            raise ValueError(value)
        return value

    def operation(self):
        return _l("equals")


class HoldsPackageFilter(BaseSQLAFilter):
    """Users that hold the chosen package today (``services.packages.holds_package_clause``)."""

    def apply(self, query, value, alias=None):
        return query.filter(holds_package_clause(db.session, int(value), date.today()))

    def clean(self, value):
        return int(value)

    def operation(self):
        return _l("holds")


def _package_options():
    return [
        (str(p.id), f"{p.name} ({p.code})")
        for p in db.session.scalars(
            select(Package).where(Package.bureau_id == current_user.bureau_id).order_by(Package.code)
        )
    ]


class UserView(ArchiveMixin, GrantPackageMixin, SecureModelView):
    """Users are created on the Personer tab and become active by accepting the invitation; status changes only
    through the invite / deactivate / reactivate actions. The form keeps what has no flow of its own."""

    can_create = False
    column_list = (
        "person.first_name",
        "person.last_name",
        "person.email",
        "person.client.name",
        User.person_kind,
        User.status,
        User.invitation_sent_at,
        User.end_date,
        User.reseller_role,
        User.staff_role,
    )
    column_labels = {
        "person": _l("Person"),
        "person.first_name": _l("First name"),
        "person.last_name": _l("Last name"),
        "person.email": _l("E-mail"),
        "person.client.name": _l("Client"),
        "person_kind": _l("Kind"),
        "status": _l("Status"),
        "end_date": _l("End date"),
        "reseller_role": _l("Bureau role"),
        "employee": _l("Employee"),
        "bank_access": _l("Bank access"),
        "user_admin": _l("User administration"),
        "staff_role": _l("Staff role"),
        "permissions": _l("Single permissions"),
        "assignments": _l("Package assignments"),
        "last_login_at": _l("Last login"),
        "created_at": _l("Created"),
        "new_password": _l("New password"),
        "invitation_sent_at": _l("Invitation"),
        "accepted_at": _l("Invitation accepted"),
        "blocked_at": _l("Blocked at"),
        "invitation_message": _l("Invitation e-mail"),
        "login_email": _l("Login e-mail"),
        "archived_at": _l("Archived"),
    }
    column_formatters = {
        "person_kind": formatter("person_kind", PERSON_KIND),
        "status": lambda v, c, m, n: _effective_status(m),
        "invitation_sent_at": _invitation,
        "reseller_role": formatter("reseller_role", RESELLER_ROLE),
        "staff_role": formatter("staff_role", STAFF_ROLE),
    }
    column_formatters_detail = column_formatters
    column_searchable_list = ("person.first_name", "person.last_name", "person.email")
    search_in = search.USERS_BY_NAME
    column_sortable_list = (
        ("person.first_name", "person.first_name"),
        ("person.last_name", "person.last_name"),
        ("person.email", "person.email"),
        User.person_kind,
        User.status,
        User.invitation_sent_at,
        User.end_date,
    )
    column_default_sort = (User.id, True)
    query_joins = (User.person,)
    column_filters = (
        EffectiveStatusFilter(User.status, _l("Status"), options=choices(USER_STATUS)),
        FilterEqual(User.person_kind, _l("Kind"), options=choices(PERSON_KIND)),
        HoldsPackageFilter(User.id, _l("Package"), options=per_request(_package_options)),
        ExpiresWithinFilter(
            User.end_date, _l("Expires"), options=[("30", _l("within 30 days")), ("7", _l("within 7 days"))]
        ),
        DateBetweenFilter(User.end_date, _l("End date")),
        DateSmallerFilter(User.end_date, _l("End date")),
        FilterEqual(User.reseller_role, _l("Bureau role"), options=choices(RESELLER_ROLE)),
        InvitationFilter(
            User.invitation_sent_at,
            _l("Invitation"),
            options=[
                (InvitationFilter.WAITING, _l("not accepted after a few days")),
                (InvitationFilter.EXPIRED, _l("expired")),
            ],
        ),
    )
    # Secrets never shown: the password hash, the open invitation link's nonce and the session token (the cookie's
    # revocation secret: with it and the key, a session of that user could be forged).
    column_details_exclude_list = (
        "version",
        "bureau",
        "password_hash",
        "assignments",
        "invitation_nonce",
        "session_token",
    )
    form_columns = ("end_date", "reseller_role", "bank_access", "user_admin", "staff_role")
    form_selects = {"reseller_role": RESELLER_ROLE, "staff_role": STAFF_ROLE}
    RESELLER_FIELDS = ("reseller_role", "bank_access", "user_admin")

    def get_query(self):
        # The person's and client's bureau is the user's (composite foreign keys), but saying so lets the planner
        # start from the persons' name indexes when the grid is sorted by name.
        return self.tenant_filter(
            db.session.query(User)
            .join(User.person)
            .join(Person.client)
            .filter(Person.bureau_id == current_user.bureau_id, Client.bureau_id == current_user.bureau_id)
            .options(
                contains_eager(User.person).contains_eager(Person.client),
                joinedload(User.invitation_message).load_only(OutboxMessage.id, OutboxMessage.sent_at),
            )
        )

    def get_count_query(self):
        return self.tenant_filter(super(SecureModelView, self).get_count_query())

    def edit_form(self, obj: User | None = None):
        """The staff role only for administrators; the bureau-user fields only for bureau users."""
        form = super().edit_form(obj)
        if not policy.is_admin(db.session, _actor()):
            del form.staff_role
        if obj is not None and obj.person_kind is not PersonKind.RESELLER_USER:
            for name in self.RESELLER_FIELDS:
                del form[name]
        return form

    def populate(self, form, model: User) -> None:
        """Every changed field asks the policy, compared with the stored row (``services.users``)."""
        update_user(db.session, model, _form_changes(self, form), actor=_actor())

    def on_model_delete(self, model: User) -> None:
        policy.check(db.session, _actor(), policy.Verb.USER_CHANGE_STATUS, model)

    # --- bulk actions -------------------------------------------------------------------------
    @action(
        "invite",
        _l("Send invitation"),
        _l("Send an invitation e-mail to the selected users? Older links stop working."),
    )
    def action_invite(self, ids: list[str]) -> None:
        report = invite_many(db.session, self.selected(ids), actor=_actor())
        db.session.commit()
        flash_invitation_report(report)

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected users? They can no longer log in."))
    def action_deactivate(self, ids: list[str]) -> None:
        with unit_of_work() as work:
            changed = deactivate(db.session, self.selected(ids), actor=current_user._get_current_object())
        if work.done:
            flash(_("%(count)s user(s) deactivated.", count=changed), "success")

    @action("reactivate", _l("Reactivate"), _l("Reactivate the selected users?"))
    def action_reactivate(self, ids: list[str]) -> None:
        with unit_of_work() as work:
            changed = reactivate(db.session, self.selected(ids), actor=current_user._get_current_object())
        if work.done:
            flash(_("%(count)s user(s) reactivated.", count=changed), "success")

    @action("grant_package", _l("Grant a package"))
    def action_grant_package(self, ids: list[str]):
        """Choosing the package and the start date needs a page of its own."""
        return redirect(self.get_url(".grant_package_view", id=[user.id for user in self.selected(ids)]))
