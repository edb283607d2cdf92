"""The kinds of background job: what one row means and how a chunk of rows is applied (see services/jobs.py).

- ``client_import``: one row per spreadsheet row, created as on the page (``client_import.import_row``); the
  register is asked once per chunk, before the chunk's transaction.
- ``person_import``: two stages, so the import keeps its rule "all valid rows of a client, or none": stage 1 checks
  every row and tries it in a savepoint that is rolled back; between the stages a client with a refused row has all
  its rows refused; stage 2 adds the rows that passed. A row the database refuses in stage 2 although it passed
  stage 1 (someone added the same e-mail by hand meanwhile) is refused alone: the client's other rows stay added.
- ``client_refresh``: one row per selected client, refreshed from the register (one call per chunk).
- ``billing_close``: one row, the month; closed in one transaction at REPEATABLE READ (``begin_consistent``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
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
        from services.client_import import OK_STATUSES, import_row, template_ids

        records, registry_error = prepared
        templates = template_ids(session, job.bureau_id)
        outcomes = {}
        for row in rows:
            result = import_row(session, job.bureau_id, row.row_number, row.input, templates, records, registry_error)
            outcomes[row.id] = Outcome(
                str(result.status),
                result.message,
                refused=result.status not in OK_STATUSES,
                target_id=result.client_id,
            )
        return outcomes

    def summary(self, session, job) -> str | None:
        counts = _status_counts(session, job)
        return str(
            _l(
                "%(created)s client(s) created, %(refused)s row(s) refused.",
                created=counts.get("created", 0),
                refused=sum(n for status, n in counts.items() if status not in ("created", "duplicate")),
            )
        )


class PersonImportHandler(JobHandler):
    stages = 2
    stage_labels = (_l("Checking rows"), _l("Importing"))

    def apply(self, session, job, rows, prepared, actor) -> dict[int, Outcome]:
        from services.person_import import Catalogue, RowStatus, add_row, check_row, clients_by_number
        from services.policy import Verb, refusal

        only_client = None
        if job.parameters.get("client_id") is not None:
            only_client = session.scalar(
                select(Client).where(Client.id == job.parameters["client_id"], Client.bureau_id == job.bureau_id)
            )
            if only_client is None:
                gone = str(_l("The client no longer exists."))
                return {row.id: Outcome("refused", gone, refused=True) for row in rows}
        catalogue = Catalogue(session, job.bureau_id)
        inputs = [row.input for row in rows]
        clients = {} if only_client is not None else clients_by_number(session, job.bureau_id, inputs)
        today = date.today()
        refusals: dict[int, str | None] = {}
        outcomes = {}
        for row in rows:
            item = check_row(row.row_number, row.input, clients=clients, only_client=only_client, catalogue=catalogue)
            if item.problems:
                outcomes[row.id] = Outcome("refused", "; ".join(item.problems), refused=True)
                continue
            client = item.client
            if client.id not in refusals:
                refusals[client.id] = refusal(session, actor, Verb.CLIENT_ADD_PEOPLE, client)
            if refusals[client.id] is not None:
                outcomes[row.id] = Outcome("refused", refusals[client.id], refused=True)
                continue
            key = {"_client": client.id, "_email": item.email}
            if job.stage == 0:
                trial = session.begin_nested()  # tried, never kept: stage 2 adds it for good
                result = add_row(session, item, today=today, actor=actor)
                trial.rollback()
                if result.status is RowStatus.REFUSED:
                    outcomes[row.id] = Outcome(
                        "refused", result.message, refused=True, finished=False, extra={**key, "_failed": True}
                    )
                else:
                    outcomes[row.id] = Outcome("checked", "", finished=False, extra=key)
            else:
                result = add_row(session, item, today=today, actor=actor)
                outcomes[row.id] = Outcome(
                    str(result.status),
                    result.message,
                    refused=result.status is RowStatus.REFUSED,
                    target_id=client.id,
                )
        return outcomes

    def between_stages(self, session, job, actor) -> dict[int, Outcome]:
        """After the check: an e-mail a row shares with an earlier row of the same client refuses the later row;
        a row the trial refused refuses its client's other rows (all or none per client)."""
        from services.person_import import not_imported_message

        rows = session.execute(
            select(JobRow.id, JobRow.row_number, JobRow.input, JobRow.message)
            .where(JobRow.job_id == job.id, JobRow.finished.is_(False))
            .order_by(JobRow.position)
        ).all()
        outcomes: dict[int, Outcome] = {}
        first_row: dict[tuple[int, str], int] = {}
        failed: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            client_id, email = row.input.get("_client"), row.input.get("_email")
            if row.input.get("_failed"):
                outcomes[row.id] = Outcome("refused", row.message or "", refused=True)
                failed[client_id].append(row.row_number)
                continue
            if email:
                if (client_id, email) in first_row:
                    message = _l(
                        "%(value)s is also on row %(row)s for the same client.",
                        value=email,
                        row=first_row[client_id, email],
                    )
                    outcomes[row.id] = Outcome("refused", f"email: {message}", refused=True)
                    continue
                first_row[client_id, email] = row.row_number
        if failed:
            names = dict(session.execute(select(Client.id, Client.name).where(Client.id.in_(list(failed)))).all())
            for row in rows:
                client_id = row.input.get("_client")
                if row.id not in outcomes and client_id in failed:
                    numbers = ", ".join(str(n) for n in failed[client_id])
                    outcomes[row.id] = Outcome(
                        "refused", not_imported_message(numbers, names.get(client_id, "")), refused=True
                    )
        return outcomes

    def summary(self, session, job) -> str | None:
        counts = _status_counts(session, job)
        return str(
            _l(
                "%(imported)s person(s) added, %(invited)s invited, %(refused)s row(s) refused.",
                imported=counts.get("created", 0) + counts.get("invited", 0),
                invited=counts.get("invited", 0),
                refused=counts.get("refused", 0),
            )
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
