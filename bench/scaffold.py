"""The naive anchor for bench/grids.py: a plain Flask-Admin scaffold over the product's tables.

What a developer gets from Flask-Admin's defaults in an afternoon: one ``ModelView`` per table with the same list
columns, search columns, sortable columns and simple column filters as the product's grid, and nothing else — no
tenancy (the bench databases hold the demo bureaus only, almost every row in the measured one), no login, no custom
search, the default page size (20) and Flask-Admin's default ``COUNT(*)`` of every list. It maps the product's own
ORM models (``models``), so the tables, types and relations are the same ones the product reads.

Served by grids.py through gunicorn like the product:

    DATABASE_URL=sqlite:////abs/path.db gunicorn --pythonpath bench 'scaffold:create_app()'

``counterpart(entry, catalogue)`` maps a page of the product (an entry of ``grids.pages``) to the scaffold's page
that does the same thing: the list, the same sort column and direction, the same search term, the same column filter
with the same operation, the same ajax lookup, the same deep page. Anything else (client page tabs, details, the
billing page, home, filters that are the product's own) has no counterpart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# One plain view per table: (endpoint, model name, settings). Names as strings, the way a scaffold is written.
VIEWS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "clients",
        "Client",
        {
            "column_list": (
                "name",
                "org_number",
                "organisation_form",
                "template",
                "is_demo",
                "consent_status",
                "created_at",
            ),
            "column_searchable_list": ("name", "org_number"),
            "column_sortable_list": (
                "name",
                "org_number",
                "organisation_form",
                ("template", "template.name"),
                "is_demo",
                "consent_status",
                "created_at",
            ),
            "column_filters": ("is_demo", "is_internal", "consent_status", "organisation_form", "created_at"),
            "form_ajax_refs": {
                "template": {"fields": ("name",)},
                "contact_person": {"fields": ("first_name", "last_name", "email")},
            },
        },
    ),
    (
        "persons",
        "Person",
        {
            "column_list": ("client.name", "kind", "first_name", "last_name", "email", "phone", "user.status"),
            "column_searchable_list": ("first_name", "last_name", "email", "client.name"),
            "column_sortable_list": (("client.name", "client.name"), "kind", "first_name", "last_name", "email"),
            "column_filters": ("kind", "email"),
        },
    ),
    (
        "users",
        "User",
        {
            "column_list": (
                "person.first_name",
                "person.last_name",
                "person.email",
                "person.client.name",
                "person_kind",
                "status",
                "invitation_sent_at",
                "end_date",
                "reseller_role",
                "staff_role",
            ),
            "column_searchable_list": ("person.first_name", "person.last_name", "person.email"),
            "column_sortable_list": (
                ("person.first_name", "person.first_name"),
                ("person.last_name", "person.last_name"),
                ("person.email", "person.email"),
                "person_kind",
                "status",
                "invitation_sent_at",
                "end_date",
            ),
            "column_filters": ("status", "person_kind", "end_date", "reseller_role"),
        },
    ),
    (
        "packages",
        "Package",
        {
            "column_list": ("code", "name", "kind", "rank", "price", "requires_main", "active"),
            "column_searchable_list": ("code", "name"),
            "column_sortable_list": ("code", "name", "kind", "rank", "price", "active"),
            "column_filters": ("kind", "active"),
        },
    ),
    (
        "assignments",
        "PackageAssignment",
        {
            "column_list": (
                "user.person.first_name",
                "user.person.last_name",
                "package.code",
                "package_kind",
                "valid_from",
                "valid_to",
            ),
            "column_sortable_list": ("valid_from", "valid_to", ("package.code", "package.code")),
            "column_filters": ("package_kind", "valid_from", "valid_to"),
            "form_ajax_refs": {"package": {"fields": ("code", "name")}},
        },
    ),
    (
        "auditlog",
        "AuditEntry",
        {
            "column_list": ("at", "actor_label", "action", "entity", "entity_id", "changes"),
            "column_searchable_list": ("actor_label",),
            "column_sortable_list": ("at", "actor_label", "action", "entity"),
            "column_filters": ("entity", "action", "entity_id", "actor_label", "at"),
        },
    ),
    (
        "outbox",
        "OutboxMessage",
        {
            "column_list": (
                "created_at",
                "recipient",
                "subject",
                "kind",
                "status",
                "attempts",
                "last_error",
                "sent_at",
            ),
            "column_searchable_list": ("recipient", "subject"),
            "column_sortable_list": ("created_at", "recipient", "kind", "status", "attempts", "sent_at"),
            "column_filters": ("status", "kind", "created_at"),
        },
    ),
]


def create_app(database_url: str | None = None):
    """The scaffold app over ``database_url`` (default: the ``DATABASE_URL`` environment variable)."""
    sys.path.insert(0, str(ROOT))
    from flask import Flask, redirect
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView
    from flask_babel import Babel

    import models
    from config import normalise_database_url
    from extensions import db

    app = Flask("scaffold")
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(database_url or os.environ["DATABASE_URL"])
    app.config["SECRET_KEY"] = "scaffold"
    db.init_app(app)
    Babel(app)
    admin = Admin(app, name="Scaffold", url="/admin")
    for endpoint, model_name, settings in VIEWS:
        view_class = type(f"{model_name}Scaffold", (ModelView,), dict(settings))
        admin.add_view(view_class(getattr(models, model_name), db, endpoint=endpoint))

    @app.get("/login")
    def login():  # what grids.serve polls to know the server is up
        return "scaffold"

    @app.get("/")
    def root():
        return redirect("/admin/")

    return app


def catalogue(app) -> dict[str, dict[str, Any]]:
    """Per endpoint: its url, sort keys in order, filters as (column key, operation, options) and ajax refs."""
    from flask_admin.contrib.sqla import ModelView

    views: dict[str, dict[str, Any]] = {}
    with app.test_request_context():
        for view in app.extensions["admin"][0]._views:
            if not isinstance(view, ModelView):
                continue
            filters = []
            for flt in view._filters or []:
                options = flt.options if flt.options is not None and not callable(flt.options) else None
                if getattr(flt, "enum_class", None) is not None:  # Flask-Admin's enum filters take member names
                    options = [(member.name, member.value) for member in flt.enum_class]
                filters.append((_column_key(flt), str(flt.operation()), options))
            views[view.endpoint] = {
                "url": f"{view.url}/",
                # ?sort=N names the N-th list column; None where that column does not sort.
                "sorts": [name if name in view._sortable_columns else None for name, _label in view._list_columns],
                "search": bool(view._search_supported),
                "filters": filters,
                "lookups": set(view._form_ajax_refs or {}),
            }
    return views


def _column_key(flt: Any) -> str | None:
    return getattr(getattr(flt, "column", None), "key", None)


def counterpart(entry: dict[str, Any], views: dict[str, dict[str, Any]]) -> str | None:
    """The scaffold's path doing what the product's page ``entry`` does, or None when it has no counterpart."""
    view = views.get(entry.get("view") or "")
    if view is None:
        return None
    base, kind = view["url"], entry["kind"]
    if kind == "list":
        return base
    if kind == "page":
        return f"{base}?page={entry['page']}"
    if kind == "sort" and entry["column"] in view["sorts"]:
        index = view["sorts"].index(entry["column"])
        return f"{base}?sort={index}" + ("&desc=1" if entry["desc"] else "")
    if kind == "search" and view["search"]:
        return f"{base}?search={entry['term']}"
    if kind == "lookup" and entry["name"] in view["lookups"]:
        return f"{base}ajax/lookup/?name={entry['name']}&query={entry['term']}"
    if kind == "filter":
        for index, (column, operation, options) in enumerate(view["filters"]):
            if column == entry["column"] and operation == entry["operation"]:
                value = entry["value"]
                if options is not None:  # the option that means the product's value, else the first one
                    same = [str(key) for key, meaning in options if value in (str(key), str(meaning))]
                    if not same and not options:
                        return None
                    value = same[0] if same else str(options[0][0])
                return f"{base}?flt0_{index}={value}"
    return None
