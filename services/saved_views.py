"""Saved views of a grid: the one place that stores, lists, applies, renames and deletes them, for every route.

A view is the grid's own query arguments (search, filters, sort, page size) under a name, private to its owner or
shared with the owner's bureau. What may be stored, and what is applied, is what the grid itself accepts
(``GridArguments``: its filters with their value checks, its sortable columns, its page sizes); anything else is
dropped and counted, so a stored view can neither smuggle a parameter into a page nor send anyone elsewhere, and a
view whose filter the grid no longer has opens without it, with a message, instead of failing.

Rules (README "Lagrede visninger"):
- a private view is seen and used by its owner only; a shared view by every staff member of the owner's bureau,
  never by another bureau; anyone may set a view they see as their own default for that grid;
- a private view is renamed or deleted by its owner only; a shared one by its owner or a bureau administrator
  (``policy.Verb.SAVED_VIEW_CHANGE``);
- names: 1 to 80 characters on one line, no control characters, unique without case per owner and grid among
  private views and per bureau and grid among shared views; at most ``MAX_VIEWS`` private views per owner and grid
  and as many shared views per bureau and grid, so the menu is bounded;
- the views of a deactivated or archived staff member stay: private ones unseen (back if the user comes back), shared
  ones in the bureau's menus, where an administrator can rename or delete them. Deleting a user deletes their views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, false, func, select, true, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import User
from models.saved_view import NAME_LENGTH, SavedView, SavedViewDefault
from services import policy
from services.errors import DomainError
from services.inputs import InvalidInput, cleaned
from services.search import MAX_SEARCH_LENGTH

MAX_VIEWS = 50  # private views per owner and grid; shared views per bureau and grid
MAX_FILTERS = 20
MAX_QUERY_LENGTH = 4000  # the stored query string (a Text column takes at most 5000 characters)
MAX_ID = 2**31 - 1  # the id column is an Integer: 32 bits on PostgreSQL
MAX_VALUE_LENGTH = 1000  # one filter value (``admin_views.base.filter_value_ok`` allows no more)


class SavedViewError(DomainError):
    """The view cannot be saved, renamed, applied or deleted; ``str(exc)`` says why."""


NOT_FOUND = _l("The saved view was not found. It may have been deleted.")


@dataclass(frozen=True)
class GridFilter:
    """One of a grid's filters: its key in the grid's links (``flt<n>_<key>``, Flask-Admin's position of the filter)
    and the name a view stores it under (which does not move when filters are added to the grid)."""

    url_key: str
    name: str
    accepts: Callable[[str], bool]


@dataclass(frozen=True)
class GridArguments:
    """What one grid accepts in its query string, as its view knows it."""

    grid: str  # the view's endpoint
    filters: tuple[GridFilter, ...]
    sorts: Mapping[str, str]  # a sortable column's name → the grid's ``sort=`` value (its position in the list)
    page_sizes: tuple[int, ...]
    default_page_size: int
    searchable: bool = True


@dataclass
class Arguments:
    """A grid's query arguments after the check, and how many were dropped."""

    filters: list[tuple[GridFilter, str]] = field(default_factory=list)
    search: str | None = None
    sort: str | None = None  # the column's name
    desc: bool = False
    page_size: int = 0
    dropped: int = 0

    @property
    def stored(self) -> str:
        """As a view stores them: filters and sort by name, in a fixed order."""
        pairs = [(f"flt{position}_{flt.name}", value) for position, (flt, value) in enumerate(self.filters)]
        return urlencode(pairs + self._rest(self.sort))

    def url_args(self, spec: GridArguments) -> dict[str, str]:
        """As the grid's own links carry them (for ``url_for``): always with a page size, so a view's link is never
        the bare grid (which opens the default view)."""
        pairs = [(f"flt{position}_{flt.url_key}", value) for position, (flt, value) in enumerate(self.filters)]
        return dict(pairs + self._rest(spec.sorts.get(self.sort) if self.sort else None))

    def _rest(self, sort: str | None) -> list[tuple[str, str]]:
        rest = [("search", self.search)] if self.search else []
        if sort is not None:
            rest += [("sort", sort)] + ([("desc", "1")] if self.desc else [])
        return rest + [("page_size", str(self.page_size))]


def check_arguments(spec: GridArguments, pairs: Iterable[tuple[str, str]], *, stored: bool) -> Arguments:
    """The arguments the grid takes among ``pairs`` (a stored view's when ``stored``, else the grid's own link's);
    the rest are dropped and counted: unknown keys, filters the grid no longer has or whose value it refuses, a
    column that cannot be sorted, a page size it does not offer, NUL characters, values over the length limit."""
    filters_by_key = {(flt.name if stored else flt.url_key): flt for flt in spec.filters}
    sort_by_key = spec.sorts if stored else {value: name for name, value in spec.sorts.items()}
    result = Arguments()
    seen: set[str] = set()
    for key, value in pairs:
        key, value = str(key), str(value)
        if "\x00" in key or "\x00" in value or len(value) > MAX_VALUE_LENGTH or len(key) > 200:
            result.dropped += 1
        elif key.startswith("flt") and "_" in key:
            position, name = key[3:].split("_", 1)
            flt = filters_by_key.get(name)
            if position.isascii() and position.isdigit() and flt is not None and len(result.filters) < MAX_FILTERS:
                if flt.accepts(value):
                    result.filters.append((flt, value))
                    continue
            result.dropped += 1
        elif key in seen or key == "page":
            pass  # a repeated argument counts once (as in the grid); the page number is not part of a view
        elif key == "search" and spec.searchable:
            result.search = " ".join(value.split())[:MAX_SEARCH_LENGTH] or None
        elif key == "sort" and value in sort_by_key:
            result.sort = value if stored else sort_by_key[value]
        elif key == "desc" and value in ("0", "1"):
            result.desc = value == "1"
        elif key == "page_size" and value.isascii() and value.isdigit() and int(value) in spec.page_sizes:
            result.page_size = int(value)
        else:
            result.dropped += 1
        seen.add(key)
    result.desc = result.desc and result.sort is not None
    result.page_size = result.page_size or spec.default_page_size
    return result


def parse_query(query: str) -> list[tuple[str, str]]:
    """A query string's pairs (a stored view's, or one a form sent back); never more than the limit allows."""
    return parse_qsl((query or "")[: MAX_QUERY_LENGTH * 4], keep_blank_values=False, max_num_fields=100)


@dataclass(frozen=True)
class MenuEntry:
    id: int
    name: str
    shared: bool
    own: bool
    is_default: bool
    can_change: bool
    query: str


@dataclass
class Menu:
    entries: list[MenuEntry]

    @property
    def default(self) -> MenuEntry | None:
        return next((entry for entry in self.entries if entry.is_default), None)

    @property
    def mine(self) -> list[MenuEntry]:
        return [entry for entry in self.entries if not entry.shared]

    @property
    def shared(self) -> list[MenuEntry]:
        return [entry for entry in self.entries if entry.shared]


def _scope(shared: bool):
    """Shared or private as a constant ("shared = 1" on SQLite), so the planner can use it in an index and see that
    it implies a partial unique index's condition (a bound parameter would hide both)."""
    column = SavedView.__table__.c.shared
    return column == true() if shared else column == false()


def menu(session: Session, actor: User, grid: str) -> Menu:
    """The views ``actor`` sees on ``grid`` (their private ones and their bureau's shared ones) and which is their
    default: one query, each half read from its own index (at most ``MAX_VIEWS`` rows each)."""
    table = SavedView.__table__
    columns = (table.c.id, table.c.name, table.c.name_key, table.c.shared, table.c.owner_id, table.c.query)
    own = select(*columns).where(table.c.owner_id == actor.id, table.c.grid == grid, _scope(False))
    shared = select(*columns).where(table.c.bureau_id == actor.bureau_id, table.c.grid == grid, _scope(True))
    seen = union_all(own, shared).subquery()
    defaults = SavedViewDefault.__table__
    rows = session.execute(
        select(seen, defaults.c.view_id).outerjoin(
            defaults,
            and_(defaults.c.user_id == actor.id, defaults.c.grid == grid, defaults.c.view_id == seen.c.id),
        )
    ).all()
    admin = actor.staff_role is not None and actor.staff_role.value == "admin"
    entries = [
        MenuEntry(
            id=row.id,
            name=row.name,
            shared=bool(row.shared),
            own=row.owner_id == actor.id,
            is_default=row.view_id is not None,
            can_change=row.owner_id == actor.id or (bool(row.shared) and admin),
            query=row.query,
        )
        for row in sorted(rows, key=lambda row: (row.name_key, row.id))
    ]
    return Menu(entries)


def clean_name(name: object) -> tuple[str, str]:
    """The name as stored (one line, spaces collapsed) and its key for uniqueness; or ``SavedViewError``."""
    text = " ".join(str(name or "").replace("\x00", "\x01").split())
    if not text:
        raise SavedViewError(_l("Give the view a name."))
    if len(text) > NAME_LENGTH:
        raise SavedViewError(
            _l(
                "The name is %(length)s characters long; at most %(limit)s are allowed.",
                length=len(text),
                limit=NAME_LENGTH,
            )
        )
    try:
        text = cleaned(text, SavedView.__table__.c.name, _l("The name"))
    except InvalidInput as exc:
        raise SavedViewError(str(exc)) from exc
    return text, text.casefold()


def _name_taken(session: Session, *, actor: User, grid: str, key: str, shared: bool, other_than: int | None) -> bool:
    query = select(SavedView.id).where(SavedView.grid == grid, SavedView.name_key == key, _scope(shared))
    query = query.where(SavedView.bureau_id == actor.bureau_id if shared else SavedView.owner_id == actor.id)
    if other_than is not None:
        query = query.where(SavedView.id != other_than)
    return session.execute(query.limit(1)).first() is not None


TAKEN = _l("A view with this name already exists on this list. Choose another name.")


def save_view(
    session: Session,
    spec: GridArguments,
    *,
    actor: User,
    name: object,
    query: str,
    shared: bool = False,
    make_default: bool = False,
) -> tuple[SavedView, int]:
    """Store the grid's current arguments (checked) as a new view; returns it and how many arguments were dropped."""
    text, key = clean_name(name)
    arguments = check_arguments(spec, parse_query(query), stored=False)
    if len(arguments.stored) > MAX_QUERY_LENGTH:
        raise SavedViewError(_l("The search and filters are too long to be saved as a view."))
    owner = SavedView.bureau_id == actor.bureau_id if shared else SavedView.owner_id == actor.id
    count = session.execute(
        select(func.count()).select_from(
            select(SavedView.id).where(owner, SavedView.grid == spec.grid, _scope(shared)).limit(MAX_VIEWS).subquery()
        )
    ).scalar_one()
    if count >= MAX_VIEWS:
        raise SavedViewError(_l("This list already has %(count)s saved views; delete one first.", count=MAX_VIEWS))
    if _name_taken(session, actor=actor, grid=spec.grid, key=key, shared=shared, other_than=None):
        raise SavedViewError(TAKEN)
    view = SavedView(
        bureau_id=actor.bureau_id,
        grid=spec.grid,
        name=text,
        name_key=key,
        owner_id=actor.id,
        shared=bool(shared),
        query=arguments.stored,
    )
    session.add(view)
    _flush_unique(session)
    if make_default:
        set_default(session, actor=actor, grid=spec.grid, view_id=view.id)
    return view, arguments.dropped


def _flush_unique(session: Session) -> None:
    """Flush; two saves of the same name at once meet the unique index, and the second gets the same message."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        detail = str(exc.orig)  # PostgreSQL names the index, SQLite its columns
        if "uq_saved_views" in detail or "saved_views.name_key" in detail:
            raise SavedViewError(TAKEN) from exc
        raise


def visible_view(session: Session, *, actor: User, grid: str, view_id: int | None) -> SavedView:
    """A view ``actor`` may see on ``grid`` (theirs, or shared in their bureau), or ``SavedViewError``: another
    bureau's view, another user's private view and an id that does not exist are all simply not found."""
    in_range = view_id is not None and 0 < view_id <= MAX_ID  # PostgreSQL refuses a wider number for the column
    view = session.get(SavedView, view_id) if in_range else None
    if (
        view is None
        or view.grid != grid
        or view.bureau_id != actor.bureau_id
        or not (view.shared or view.owner_id == actor.id)
    ):
        raise SavedViewError(NOT_FOUND)
    return view


def apply_view(session: Session, spec: GridArguments, *, actor: User, view_id: int | None) -> Arguments:
    """The arguments a view opens its grid with, checked against the grid as it is now."""
    view = visible_view(session, actor=actor, grid=spec.grid, view_id=view_id)
    return check_arguments(spec, parse_query(view.query), stored=True)


def rename_view(session: Session, *, actor: User, grid: str, view_id: int | None, name: object) -> SavedView:
    view = visible_view(session, actor=actor, grid=grid, view_id=view_id)
    policy.check(session, actor, policy.Verb.SAVED_VIEW_CHANGE, view)
    text, key = clean_name(name)
    if text == view.name:
        return view
    # A shared view's name is unique in the bureau (the actor's), a private one's among its owner's (the actor).
    if _name_taken(session, actor=actor, grid=grid, key=key, shared=view.shared, other_than=view.id):
        raise SavedViewError(TAKEN)
    view.name, view.name_key = text, key
    _flush_unique(session)
    return view


def delete_view(session: Session, *, actor: User, grid: str, view_id: int | None) -> None:
    view = visible_view(session, actor=actor, grid=grid, view_id=view_id)
    policy.check(session, actor, policy.Verb.SAVED_VIEW_CHANGE, view)
    session.execute(SavedViewDefault.__table__.delete().where(SavedViewDefault.view_id == view.id))
    session.delete(view)
    session.flush()


def set_default(session: Session, *, actor: User, grid: str, view_id: int | None) -> SavedView:
    """Make a view ``actor`` sees their default for the grid (replacing any other)."""
    view = visible_view(session, actor=actor, grid=grid, view_id=view_id)
    current = session.get(SavedViewDefault, (actor.id, grid))
    if current is None:
        session.add(SavedViewDefault(user_id=actor.id, grid=grid, view_id=view.id))
    else:
        current.view_id = view.id
    session.flush()
    return view


def clear_default(session: Session, *, actor: User, grid: str) -> bool:
    """No default view for the grid any more (the bare grid opens unfiltered); whether there was one."""
    result = session.execute(
        SavedViewDefault.__table__.delete().where(SavedViewDefault.user_id == actor.id, SavedViewDefault.grid == grid)
    )
    return bool(result.rowcount)
