"""The kinds of background job: what one row means and how a chunk of rows is applied (see services/jobs.py).

- ``client_import``, ``person_import``: one row per spreadsheet row, created, skipped as a duplicate or refused as on
  the page (``client_import.import_row``, ``person_import.PersonImport``; see ``services/import_rows.py``). A row
  that repeats one of an earlier chunk is a duplicate because that chunk is committed. The register is asked once
  per chunk of a client import, before the chunk's transaction.
- ``client_refresh``: one row per selected client, refreshed from the register (one call per chunk).
- ``billing_close``: one row, the month; closed in one transaction at REPEATABLE READ (``begin_consistent``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Client, JobKind, JobRow, User
from services.client_refresh import client_label
from services.jobs import JobContext, JobHandler, Outcome, RowInput

# The bulk refresh's summary names this many clients the register did not know; the rows name the rest.
NAMED_IN_SUMMARY = 10


class ClientImportHandler(JobHandler):
    stage_labels = (_l("Importing"),)

    def prepare(self, job: JobContext, rows: list[RowInput]) -> Any:
        from services.client_import import lookup_rows
        from services.registry import get_registry

        return lookup_rows([row.input for row in rows], get_registry(current_app))

    def apply(self, session, job, rows, prepared, actor) -> dict[int, Outcome]:
        from services import client_import

        records, registry_error = prepared
        importer = client_import.ClientImport(session, job.bureau_id, records, registry_error)
        outcomes = {}
        for row in rows:
            result = client_import.import_row(importer, row.row_number, row.input)
            outcomes[row.id] = _outcome(result)
        return outcomes

    def summary(self, session, job) -> str | None:
        counts = _import_counts(session, job)
        text = _l(
            "%(created)s client(s) created, %(duplicate)s duplicate(s) skipped, %(refused)s row(s) refused.",
            created=counts.created,
            duplicate=counts.duplicate,
            refused=counts.refused,
        )
        return _with_preview(job, counts, str(text))


class PersonImportHandler(JobHandler):
    stage_labels = (_l("Importing"),)

    def apply(self, session, job, rows, prepared, actor) -> dict[int, Outcome]:
        from services.person_import import PersonImport

        only_client = None
        if job.parameters.get("client_id") is not None:
            only_client = session.scalar(
                select(Client).where(Client.id == job.parameters["client_id"], Client.bureau_id == job.bureau_id)
            )
            if only_client is None:
                gone = str(_l("The client no longer exists."))
                return {row.id: Outcome("refused", gone, refused=True) for row in rows}
        importer = PersonImport(
            session,
            job.bureau_id,
            [row.input for row in rows],
            only_client=only_client,
            today=date.today(),
            actor=actor,
        )
        return {row.id: _outcome(importer.row(row.row_number, row.input)) for row in rows}

    def summary(self, session, job) -> str | None:
        counts = _import_counts(session, job)
        text = _l(
            "%(imported)s person(s) added, %(duplicate)s duplicate(s) skipped, %(refused)s row(s) refused.",
            imported=counts.created,
            duplicate=counts.duplicate,
            refused=counts.refused,
        )
        return _with_preview(job, counts, str(text))


def _import_counts(session: Session, job: JobContext):
    from services.import_rows import ImportCounts

    counts = _status_counts(session, job)
    return ImportCounts(
        created=counts.get("created", 0),
        duplicate=counts.get("duplicate", 0),
        refused=sum(n for status, n in counts.items() if status not in ("created", "duplicate")),
    )


def _with_preview(job: JobContext, counts, text: str) -> str:
    """The summary, and when the import found other counts than its preview showed, that the data changed."""
    from services.import_rows import ImportCounts, changed_since_preview

    previewed = job.parameters.get("previewed")
    if not (isinstance(previewed, list) and len(previewed) == 3):
        return text
    created, duplicate, refused = previewed
    changed = changed_since_preview(ImportCounts(created=created, duplicate=duplicate, refused=refused), counts)
    return f"{text} {changed}" if changed else text


def _outcome(result) -> Outcome:
    """An import row's result (``services/import_rows.py``) as the job records it."""
    return Outcome(
        str(result.status),
        result.message,
        refused=str(result.status) == "refused",
        target_id=result.target_id,
    )


class ClientRefreshHandler(JobHandler):
    stage_labels = (_l("Updating from the register"),)

    def prepare(self, job: JobContext, rows: list[RowInput]) -> Any:
        from services.registry import RegistryError, get_registry
        from services.registry.messages import user_message

        numbers = sorted({row.input["org_number"] for row in rows if row.input.get("org_number")})
        if not numbers:
            return {}, None
        try:
            return get_registry(current_app).lookup_many(numbers), None
        except RegistryError as exc:
            return {}, user_message(exc)

    def apply(self, session, job, rows, prepared, actor) -> dict[int, Outcome]:
        from services import client_refresh

        records, registry_error = prepared
        ids = [row.input.get("client_id") for row in rows]
        clients = {
            c.id: c
            for c in session.scalars(select(Client).where(Client.id.in_(ids), Client.bureau_id == job.bureau_id))
        }
        outcomes = {}
        for row in rows:
            client = clients.get(row.input.get("client_id"))
            if client is None:
                outcomes[row.id] = Outcome("gone", str(_l("The client no longer exists.")), refused=True)
            elif not client.org_number:
                outcomes[row.id] = Outcome(
                    "without_number", str(_l("The client has no organisation number to look up."))
                )
            elif client.org_number != row.input.get("org_number"):
                outcomes[row.id] = Outcome(
                    "changed",
                    str(_l("The organisation number was changed after the update was started; run it again.")),
                    refused=True,
                )
            elif registry_error is not None:
                outcomes[row.id] = Outcome("registry_unavailable", registry_error, refused=True, target_id=client.id)
            elif (record := records.get(client.org_number)) is None:
                message = str(_l("%(client)s: not found in the company register.", client=client_label(client)))
                outcomes[row.id] = Outcome("not_found", message, refused=True, target_id=client.id)
            else:
                changes = client_refresh.apply(client, record)
                parts = [", ".join(change.label for change in changes)] if changes else []
                parts += client_refresh.warnings(record)
                outcomes[row.id] = Outcome("updated" if changes else "unchanged", " ".join(parts), target_id=client.id)
        session.flush()
        return outcomes

    def summary(self, session, job) -> str | None:
        counts = _status_counts(session, job)
        summary = str(
            _l(
                "Register update: %(updated)s changed, %(unchanged)s unchanged, %(without)s without organisation "
                "number.",
                updated=counts.get("updated", 0),
                unchanged=counts.get("unchanged", 0),
                without=counts.get("without_number", 0),
            )
        )
        # Who was not found, by name: "1 not found" sends the bureau hunting through the rows.
        missing = session.scalars(
            select(JobRow.input)
            .where(JobRow.job_id == job.id, JobRow.finished.is_(True), JobRow.status == "not_found")
            .order_by(JobRow.position)
            .limit(NAMED_IN_SUMMARY + 1)
        ).all()
        named = [
            str(_l("%(client)s: not found", client=client_label(row.get("name"), row.get("org_number"))))
            for row in missing[:NAMED_IN_SUMMARY]
        ]
        if counts.get("not_found", 0) > NAMED_IN_SUMMARY:
            named.append(str(_l("and %(count)s more not found", count=counts["not_found"] - NAMED_IN_SUMMARY)))
        return " ".join([summary, *(f"{line}." for line in named)])


class BillingCloseHandler(JobHandler):
    stage_labels = (_l("Closing the month"),)
    isolate_rows = False  # a failed close is tried again later (and then failed): never "refused" by an outage

    def begin(self, session: Session) -> None:
        from services.billing_close import begin_consistent

        begin_consistent(session)

    def apply(self, session, job, rows, prepared, actor: User | None) -> dict[int, Outcome]:
        from services import billing, billing_close
        from services.errors import DomainError

        outcomes = {}
        for row in rows:
            period = billing.Period.parse(row.input["period"])
            try:
                result = billing_close.close_month(
                    session, job.bureau_id, period, actor=actor, actor_label=job.created_by_label, today=date.today()
                )
            except DomainError as exc:
                outcomes[row.id] = Outcome("refused", str(exc), refused=True)
                continue
            if result.already_closed:
                message = _l("%(month)s was already closed; nothing changed.", month=str(period))
            else:
                message = _l("%(month)s is closed: its billing basis will never change.", month=str(period))
            outcomes[row.id] = Outcome("already_closed" if result.already_closed else "closed", str(message))
        return outcomes

    def summary(self, session, job) -> str | None:
        row = session.scalar(select(JobRow.message).where(JobRow.job_id == job.id).order_by(JobRow.position))
        return row


def _status_counts(session: Session, job: JobContext) -> Counter[str]:
    from sqlalchemy import func

    return Counter(
        dict(
            session.execute(
                select(JobRow.status, func.count())
                .where(JobRow.job_id == job.id, JobRow.finished.is_(True))
                .group_by(JobRow.status)
            ).all()
        )
    )


HANDLERS: dict[JobKind, JobHandler] = {
    JobKind.CLIENT_IMPORT: ClientImportHandler(),
    JobKind.PERSON_IMPORT: PersonImportHandler(),
    JobKind.CLIENT_REFRESH: ClientRefreshHandler(),
    JobKind.BILLING_CLOSE: BillingCloseHandler(),
}
