"""Background jobs: big imports, the bulk register refresh and month closing run in the jobs worker with progress,
survive a stopped or killed worker without applying a row twice, and keep per-row results and the rejected rows."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from extensions import db
from models import (
    BillingMonth,
    Client,
    Job,
    JobKind,
    JobRow,
    JobStatus,
    OutboxMessage,
    PackageKind,
    Person,
    PersonKind,
    StaffRole,
    utcnow,
)
from services import client_import, person_import
from services.jobs import create_job, run_worker
from services.policy import REFUSALS
from tests.conftest import PASSWORD
from tests.fixtures.imports import upload_and_import

ROOT = Path(__file__).resolve().parent.parent
CLIENT_HEADER = client_import.HEADER
IN_REGISTER = ("914375916", "921000022", "921000030")  # the emulator knows these
NOT_IN_REGISTER = "974760673"


def page(response) -> str:
    return response.get_data(as_text=True)


def upload(client, url: str, header, rows, filename: str = "stor.csv"):
    """Upload and press "Importer N rader" under the preview: a big file's import is queued as a job."""
    return upload_and_import(client, url, header, rows, filename)


def by_hand(n: int, start: int = 0) -> list[list[str]]:
    """Client rows without org number: created by hand, no register call, no e-mail."""
    return [["", f"Jobbkunde {i:04d} AS", "", "no", "", "", "", "", ""] for i in range(start, start + n)]


def with_contact(i: int) -> list[str]:
    return ["", f"Kontaktkunde {i:04d} AS", "", "no", "Kari", f"Nordmann{i}", f"kari{i}@kunde.example", "", ""]


def work(app, **kwargs) -> int:
    """The jobs worker in this process; the test's own transaction ends first, so SQLite's write lock is free."""
    db.session.commit()
    return run_worker(app, **kwargs)


def job_id_from(response) -> int:
    assert response.status_code == 302, page(response)
    match = re.search(r"/admin/jobs/(\d+)/$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def the_job(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def client_names(prefix: str) -> list[str]:
    return list(db.session.scalars(select(Client.name).where(Client.name.startswith(prefix)).order_by(Client.name)))


def queue_import(bureau, staff, rows) -> int:
    """A client import job straight through the service, as the page queues it."""
    job = create_job(
        db.session,
        bureau_id=bureau.id,
        kind=JobKind.CLIENT_IMPORT,
        actor=staff,
        title="test",
        rows=[dict(zip(CLIENT_HEADER, row, strict=True)) for row in rows],
        row_numbers=range(2, len(rows) + 2),
        columns=CLIENT_HEADER,
    )
    job_id = job.id
    db.session.commit()
    return job_id


# --- the client import ------------------------------------------------------------------------


def test_a_big_client_import_runs_as_a_job_with_results_and_rejected_rows(login_as, client, make_client, run_jobs):
    login_as("staff")
    make_client(org_number="923456783", name="Finnes Fra Før AS")
    rows = by_hand(50)
    rows += [
        [IN_REGISTER[0], "", "", "no", "Kari", "Nordmann", "kari@tollbugata.example", "", "daglig_leder"],
        ["923456783", "", "", "no", "", "", "", "", ""],  # duplicate: reported, not an error
        ["123456789", "Feil Nummer AS", "", "no", "", "", "", "", ""],  # invalid number
        [NOT_IN_REGISTER, "", "", "no", "", "", "", "", ""],  # not in the register
        ["", "Feil Demo AS", "", "kanskje", "", "", "+47 1", "", ""],  # bad demo value
    ]
    response = upload(client, "/admin/clients/import/", CLIENT_HEADER, rows)
    job_id = job_id_from(response)
    assert client_names("Jobbkunde") == []  # nothing yet: the request only queued the job
    queued = client.get(f"/admin/jobs/{job_id}/progress.json").get_json()
    assert queued["status"] == "queued" and queued["total"] == 55 and queued["done"] == 0
    assert "Venter" in page(client.get(f"/admin/jobs/{job_id}/"))

    run_jobs()
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.done == 55 and job.errors == 3
    assert len(client_names("Jobbkunde")) == 50
    assert db.session.scalar(select(func.count()).select_from(Client).where(Client.org_number == IN_REGISTER[0])) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # one consent e-mail
    text = page(client.get(f"/admin/jobs/{job_id}/"))
    assert 'id="job-results"' in text and text.count("<tr class=") == 55
    assert "50 klient(er) opprettet" not in text  # the summary counts every created client
    assert "51 kunde(r) opprettet, 1 duplikat(er) hoppet over, 3 rad(er) avvist." in text
    assert "endret seg etter forhåndsvisningen" not in text
    assert "Avvist" in text and "Duplikat" in text

    rejected = client.get(f"/admin/jobs/{job_id}/rejected.csv")
    assert rejected.status_code == 200 and rejected.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(rejected.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0] == [*CLIENT_HEADER, "reason"]
    assert [row[:2] for row in table[1:]] == [
        ["123456789", "Feil Nummer AS"],
        [NOT_IN_REGISTER, ""],
        ["", "Feil Demo AS"],
    ]
    assert table[3][6] == "+47 1"  # the input comes back as it was, to be fixed and uploaded again
    assert all(row[-1] for row in table[1:])
    only_refused = page(client.get(f"/admin/jobs/{job_id}/?refused=1"))
    assert only_refused.count("<tr class=") == 3


def test_a_small_import_stays_instant(login_as, client):
    login_as("staff")
    response = upload(client, "/admin/clients/import/", CLIENT_HEADER, by_hand(50))
    assert response.status_code == 200 and 'id="import-report"' in page(response)
    assert len(client_names("Jobbkunde")) == 50
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_progress_is_reported_while_the_job_runs(app, login_as, client, bureau):
    staff = login_as("staff")
    job_id = queue_import(bureau, staff, by_hand(60))
    seen = []

    def look(_job_id):
        seen.append(client.get(f"/admin/jobs/{job_id}/progress.json").get_json())

    work(app, max_passes=1, chunk_rows=20, after_chunk=look)
    assert [(p["status"], p["done"], p["total"]) for p in seen] == [
        ("running", 20, 60),
        ("running", 40, 60),
        ("running", 60, 60),
    ]
    assert all(p["ended"] is False and "20" in seen[0]["text"] for p in seen)
    assert seen[0]["percent"] == 33 and seen[1]["percent"] == 66
    final = client.get(f"/admin/jobs/{job_id}/progress.json").get_json()
    assert final["status"] == "done" and final["ended"] and final["percent"] == 100 and final["errors"] == 0


def test_errors_so_far_are_counted_while_running(app, login_as, client, bureau):
    staff = login_as("staff")
    rows = by_hand(10) + [["", "Feil AS", "", "kanskje", "", "", "", "", ""]] * 5 + by_hand(10, 10)
    job_id = queue_import(bureau, staff, rows)
    seen = []
    run_worker(
        app,
        max_passes=1,
        chunk_rows=15,
        after_chunk=lambda _id: seen.append(client.get(f"/admin/jobs/{job_id}/progress.json").get_json()),
    )
    assert [(p["done"], p["errors"]) for p in seen] == [(15, 5), (25, 5)]


def test_a_row_the_database_refuses_is_refused_alone_and_the_job_goes_on(bureau, make_staff, monkeypatch, run_jobs):
    from sqlalchemy.exc import DataError

    staff = make_staff(bureau)
    rows = by_hand(60)
    rows[33][1] = "Umulig AS"
    job_id = queue_import(bureau, staff, rows)
    real = client_import.import_row

    def refuses_one(importer, index, row):
        if row["name"] == "Umulig AS":
            importer.session.flush()
            raise DataError("INSERT INTO clients", {}, Exception("invalid byte sequence"))
        return real(importer, index, row)

    monkeypatch.setattr(client_import, "import_row", refuses_one)
    run_jobs()
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.done == 60 and job.errors == 1
    assert len(client_names("Jobbkunde")) == 59 and "Umulig AS" not in client_names("")
    refused = db.session.execute(select(JobRow.row_number, JobRow.status, JobRow.message).where(JobRow.refused)).one()
    assert refused.row_number == 35 and refused.status == "failed" and "invalid byte" not in refused.message


# --- a worker that stops or dies --------------------------------------------------------------


def test_a_stopped_worker_hands_the_job_back_and_the_next_resumes(app, bureau, make_staff):
    staff = make_staff(bureau)
    rows = [with_contact(i) for i in range(60)]
    job_id = queue_import(bureau, staff, rows)
    stop = threading.Event()
    chunks = []

    def after(_job_id):
        chunks.append(_job_id)
        if len(chunks) == 2:
            stop.set()

    work(app, stop_event=stop, chunk_rows=10, after_chunk=after)
    job = the_job(job_id)
    assert job.status is JobStatus.QUEUED and job.done == 20 and job.worker is None and job.claims == 0
    assert len(client_names("Kontaktkunde")) == 20

    work(app, max_passes=1, chunk_rows=10)
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.done == 60 and job.errors == 0
    names = client_names("Kontaktkunde")
    assert names == sorted(f"Kontaktkunde {i:04d} AS" for i in range(60))  # each exactly once
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.email.like("kari%"))) == 60
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 60  # one consent e-mail each


class Killed(BaseException):
    """Stands in for the process dying: nothing of the running chunk is committed."""


def test_a_worker_dying_mid_chunk_loses_only_that_chunk_and_the_next_resumes_after_the_lease(
    app, bureau, make_staff, monkeypatch
):
    staff = make_staff(bureau)
    job_id = queue_import(bureau, staff, [with_contact(i) for i in range(50)])
    real = client_import.import_row
    calls = []

    def dies_in_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 25:  # five rows into the third chunk of ten, those five already flushed
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(client_import, "import_row", dies_in_the_third_chunk)
    with pytest.raises(Killed):
        work(app, max_passes=1, chunk_rows=10)
    monkeypatch.setattr(client_import, "import_row", real)
    job = the_job(job_id)
    assert job.status is JobStatus.RUNNING and job.done == 20 and job.locked_until is not None
    assert len(client_names("Kontaktkunde")) == 20  # the dead chunk's rows are not stored
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 20

    work(app, max_passes=1, chunk_rows=10)  # the lease has not run out: nobody takes the job over
    assert the_job(job_id).done == 20

    later = utcnow() + timedelta(minutes=5)
    work(app, max_passes=1, chunk_rows=10, clock=lambda: later)
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.done == 50 and job.claims == 2
    assert client_names("Kontaktkunde") == sorted(f"Kontaktkunde {i:04d} AS" for i in range(50))
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 50
    statuses = db.session.scalars(select(JobRow.status).where(JobRow.job_id == job_id)).all()
    assert statuses == ["created"] * 50


def test_a_worker_whose_lease_was_taken_over_records_nothing(app, bureau, make_staff):
    from services.jobs import claim_next, run_job

    staff = make_staff(bureau)
    job_id = queue_import(bureau, staff, by_hand(30))
    now = utcnow()
    assert claim_next(db.session, token="first", now=now, lease=timedelta(seconds=60)) == job_id
    later = now + timedelta(minutes=2)
    assert claim_next(db.session, token="second", now=later, lease=timedelta(seconds=60)) == job_id
    assert run_job(db.session, job_id, "first", clock=lambda: later, chunk_rows=10) == "lost"
    assert client_names("Jobbkunde") == [] and the_job(job_id).done == 0
    assert run_job(db.session, job_id, "second", clock=lambda: later, chunk_rows=10) == "done"
    assert len(client_names("Jobbkunde")) == 30


def _worker_process(database_url: str, registry_url: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BRREG_BASE_URL": registry_url,
        "JOBS_CHUNK_ROWS": "5",
        "JOBS_LEASE_SECONDS": "1",
        "MAIL_SERVER": "",
    }
    env.pop("APP_ENV", None)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "jobs", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the worker did not get there in time"
        time.sleep(0.05)


def test_a_killed_worker_process_is_resumed_by_the_next_without_doubles(
    app, bureau, make_staff, registry_emulator, tmp_path
):
    """The real thing: `flask jobs worker` SIGKILLed in the middle of a job, then a second worker started."""
    staff = make_staff(bureau)
    job_id = queue_import(bureau, staff, by_hand(400))
    url = db.engine.url.render_as_string(hide_password=False)

    def state() -> tuple[str, int]:
        """Read and end the transaction at once: the test must not hold SQLite's write lock while it waits."""
        with db.engine.connect().execution_options(read_only_snapshot=True) as conn:
            status, done = conn.execute(select(Job.status, Job.done).where(Job.id == job_id)).one()
        return JobStatus(status), done

    def done() -> int:
        return state()[1]

    db.session.commit()
    with (tmp_path / "first.log").open("wb") as log:
        first = _worker_process(url, registry_emulator.base_url, log)
        try:
            _wait_for(lambda: done() >= 40)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
    errors = (tmp_path / "first.log").read_text()
    assert "Traceback" not in errors, errors
    recorded = done()
    assert recorded < 400, "the job ended before the worker was killed"
    assert len(client_names("Jobbkunde")) == recorded  # stored rows are exactly the rows recorded done
    db.session.commit()

    with (tmp_path / "second.log").open("wb") as log:
        second = _worker_process(url, registry_emulator.base_url, log)
        try:
            _wait_for(lambda: state()[0] is JobStatus.DONE)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    job = the_job(job_id)
    assert job.done == 400 and job.errors == 0 and job.claims == 2
    assert client_names("Jobbkunde") == [f"Jobbkunde {i:04d} AS" for i in range(400)]


# --- tenancy and roles ------------------------------------------------------------------------


def test_another_bureaus_job_is_not_found(login_as, client, make_bureau, make_staff):
    login_as("staff")
    other = make_bureau()
    foreign = create_job(
        db.session,
        bureau_id=other.id,
        kind=JobKind.CLIENT_IMPORT,
        actor=make_staff(other),
        title="Fremmed jobb",
        rows=[{"name": "x"}],
        columns=("name",),
    )
    db.session.commit()
    for suffix in ("", "progress.json", "rejected.csv"):
        assert client.get(f"/admin/jobs/{foreign.id}/{suffix}").status_code == 404
    for junk in (str(2**63), "-1", "x", "1%00"):
        assert client.get(f"/admin/jobs/{junk}/").status_code == 404
    assert "Fremmed jobb" not in page(client.get("/admin/jobs/"))


def test_the_job_list_is_the_bureaus_newest_first_and_needs_a_login(app, login_as, client, bureau, make_staff):
    staff = make_staff(bureau)
    for n in range(3):
        create_job(
            db.session, bureau_id=bureau.id, kind=JobKind.CLIENT_IMPORT, actor=staff, title=f"Jobb nummer {n}", rows=[]
        )
    db.session.commit()
    assert client.get("/admin/jobs/").status_code == 302  # anonymous: to the login
    login_as("staff")
    text = page(client.get("/admin/jobs/"))
    assert text.index("Jobb nummer 2") < text.index("Jobb nummer 1") < text.index("Jobb nummer 0")
    assert "Jobber" in page(client.get("/admin/"))  # in the menu


# --- the bulk register refresh ----------------------------------------------------------------


def test_bulk_refresh_runs_as_a_job_end_to_end(login_as, client, make_client, registry_emulator, run_jobs):
    login_as("staff")
    known = [make_client(org_number=n, name=f"Gammelt navn {n}") for n in IN_REGISTER]
    missing = make_client(org_number=NOT_IN_REGISTER, name="Ikke i registeret AS")
    without = make_client(org_number=None, name="Uten nummer AS")
    ids = [c.id for c in [*known, missing, without]]
    registry_emulator.reset()
    response = client.post("/admin/clients/action/", data={"action": "refresh_registry", "rowid": ids})
    job_id = job_id_from(response)
    assert not [r for r in registry_emulator.requests if "organisasjonsnummer=" in r]  # no call from the request
    assert db.session.get(Client, known[0].id).registry_checked_at is None

    run_jobs()
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.total == 5 and job.done == 5 and job.errors == 1
    for record in known:
        stored = db.session.get(Client, record.id)
        assert not stored.name.startswith("Gammelt navn") and stored.registry_checked_at is not None
    assert db.session.get(Client, missing.id).name == "Ikke i registeret AS"
    assert len([r for r in registry_emulator.requests if r.startswith("/enheter?organisasjonsnummer=")]) == 1
    text = page(client.get(f"/admin/jobs/{job_id}/"))
    assert "3 endret, 0 uendret, 1 uten organisasjonsnummer" in text
    assert f"Ikke i registeret AS ({NOT_IN_REGISTER}): ikke funnet" in text  # named, not "1 ikke funnet"
    assert "avvikling" in text  # the register's warning is in the row's result
    rejected = page(client.get(f"/admin/jobs/{job_id}/rejected.csv")).lstrip("\ufeff").splitlines()
    assert rejected[0] == "org_number,name,reason" and rejected[1].startswith(
        f"{NOT_IN_REGISTER},Ikke i registeret AS,"
    )
    assert len(rejected) == 2


def test_bulk_refresh_with_the_register_down_changes_nothing(app, login_as, client, make_client, run_jobs):
    login_as("staff")
    record = make_client(org_number=IN_REGISTER[0], name="Gammelt navn AS")
    response = client.post("/admin/clients/action/", data={"action": "refresh_registry", "rowid": [record.id]})
    job_id = job_id_from(response)
    app.config["BRREG_BASE_URL"] = "http://127.0.0.1:9"
    app.extensions.pop("registry", None)
    run_jobs()
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.errors == 1
    stored = db.session.get(Client, record.id)
    assert stored.name == "Gammelt navn AS" and stored.registry_checked_at is None
    assert db.session.scalar(select(JobRow.status).where(JobRow.job_id == job_id)) == "registry_unavailable"


def test_bulk_refresh_never_touches_another_bureaus_clients(login_as, client, make_bureau, make_client, run_jobs):
    login_as("staff")
    foreign = make_client(bureau=make_bureau(), org_number=IN_REGISTER[0], name="Fremmed AS")
    response = client.post("/admin/clients/action/", data={"action": "refresh_registry", "rowid": [foreign.id]})
    assert response.status_code == 302 and "/admin/jobs/" not in response.headers["Location"]
    run_jobs()
    assert db.session.get(Client, foreign.id).name == "Fremmed AS"
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


# --- the person import ------------------------------------------------------------------------


@pytest.fixture
def basis(make_package):
    return make_package(code="BASIS", kind=PackageKind.MAIN)


def person_rows(n: int) -> list[list[str]]:
    return [
        ["", "user", f"Ansatt{i}", "Kundesen", f"ansatt{i}@kunde.example", "", "BASIS", "", "", "no"] for i in range(n)
    ]


def test_a_big_person_import_runs_as_a_job(login_as, client, make_client, basis, run_jobs):
    login_as("staff")
    customer = make_client(name="Storkunde AS")
    rows = person_rows(55)
    rows[3][1] = "superuser"  # refused by the check: the other rows are still imported
    rows[10][4] = rows[9][4]  # the same e-mail twice: the later row is a duplicate
    rows[25][4] = rows[24][4]  # … also when the earlier row is in the chunk before (chunks of 25)
    rows[20][9] = "ja"  # invited
    response = upload(client, f"/admin/clients/people/import/?id={customer.id}", person_import.HEADER, rows)
    job_id = job_id_from(response)
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.client_id == customer.id)) == 0
    progress = client.get(f"/admin/jobs/{job_id}/progress.json").get_json()
    assert progress["stages"] == 1 and progress["total"] == 55

    run_jobs()
    job = the_job(job_id)
    assert job.status is JobStatus.DONE and job.done == 55 and job.errors == 1
    emails = db.session.scalars(select(Person.email).where(Person.client_id == customer.id)).all()
    assert len(emails) == 52 and len(set(emails)) == 52
    invitations = db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "invitation")).all()
    assert invitations == ["ansatt20@kunde.example"]
    rejected = page(client.get(f"/admin/jobs/{job_id}/rejected.csv")).lstrip("\ufeff").splitlines()
    assert rejected[0] == ",".join([*person_import.HEADER, "reason"]) and len(rejected) == 2
    text = page(client.get(f"/admin/jobs/{job_id}/"))
    assert "52 person(er) lagt til, 2 duplikat(er) hoppet over, 1 rad(er) avvist." in text
    assert "endret seg etter forhåndsvisningen" not in text


def test_a_person_import_job_of_a_corrected_file_skips_the_people_added(
    login_as, client, make_client, make_person, basis, run_jobs
):
    login_as("staff")
    customer = make_client(name="Storkunde AS")
    make_person(customer, PersonKind.USER, email="finnes@kunde.example")
    rows = person_rows(55)
    rows[40][4] = "finnes@kunde.example"  # already on the client: skipped, the others are added
    rows[41][1] = "superuser"
    first_job = job_id_from(
        upload(client, f"/admin/clients/people/import/?id={customer.id}", person_import.HEADER, rows)
    )
    run_jobs()
    job = the_job(first_job)
    assert job.status is JobStatus.DONE and job.errors == 1
    count = db.session.scalar(select(func.count()).select_from(Person).where(Person.client_id == customer.id))
    assert count == 1 + 53

    rows[41][1] = "bruker"  # corrected, and the whole file uploaded again
    preview_url = f"/admin/clients/people/import/?id={customer.id}"
    again = job_id_from(upload(client, preview_url, person_import.HEADER, rows))
    run_jobs()
    job = the_job(again)
    assert job.status is JobStatus.DONE and job.errors == 0
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.client_id == customer.id)) == 55
    statuses = db.session.scalars(select(JobRow.status).where(JobRow.job_id == again)).all()
    assert statuses.count("duplicate") == 54 and statuses.count("created") == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_job_says_when_the_data_changed_after_the_preview(
    login_as, client, make_client, make_person, basis, run_jobs
):
    from tests.fixtures.imports import confirm
    from tests.fixtures.imports import upload as preview_upload

    login_as("staff")
    customer = make_client(name="Storkunde AS")
    url = f"/admin/clients/people/import/?id={customer.id}"
    preview = preview_upload(client, url, person_import.HEADER, person_rows(55))
    make_person(customer, PersonKind.USER, email="ansatt7@kunde.example")  # added by hand meanwhile
    job_id = job_id_from(confirm(client, preview))
    run_jobs()
    text = page(client.get(f"/admin/jobs/{job_id}/"))
    assert "54 person(er) lagt til, 1 duplikat(er) hoppet over, 0 rad(er) avvist." in text
    assert "Dataene endret seg etter forhåndsvisningen: den viste 55 å importere" in text


# --- month closing ----------------------------------------------------------------------------


def test_month_closing_runs_as_a_job_for_administrators_only(app, client, bureau, make_staff, login, run_jobs):
    staff_browser = app.test_client()
    staff = make_staff(bureau)
    assert staff_browser.post("/login", data={"email": staff.person.email, "password": PASSWORD}).status_code == 302
    refused = staff_browser.post(
        "/admin/billing/close/", data={"period": "2025-03", "confirm": "1"}, follow_redirects=True
    )
    assert (
        str(REFUSALS["admin_only"]) in page(refused) and db.session.scalar(select(func.count()).select_from(Job)) == 0
    )
    admin = make_staff(bureau, StaffRole.ADMIN)
    login(admin)
    first = job_id_from(client.post("/admin/billing/close/", data={"period": "2025-03", "confirm": "1"}))
    second = job_id_from(client.post("/admin/billing/close/", data={"period": "2025-03", "confirm": "1"}))
    assert first == second  # a second submit finds the queued job
    run_jobs()
    month = db.session.scalar(select(BillingMonth).where(BillingMonth.bureau_id == bureau.id))
    assert month.period == "2025-03" and month.closed_by_id == admin.id
    assert "2025-03 er lukket" in page(client.get(f"/admin/jobs/{first}/"))
    again = client.post("/admin/billing/close/", data={"period": "2025-03", "confirm": "1"}, follow_redirects=True)
    assert "allerede lukket" in page(again) and db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_a_job_that_keeps_failing_is_stopped_with_a_sentence(app, login_as, client, bureau, monkeypatch, run_jobs):
    from sqlalchemy.exc import OperationalError

    from services import billing_close

    def breaks(*args, **kwargs):
        raise OperationalError("INSERT INTO billing_months", {}, Exception("disk I/O error"))

    login_as("admin")
    job_id = job_id_from(client.post("/admin/billing/close/", data={"period": "2025-03", "confirm": "1"}))
    monkeypatch.setattr(billing_close, "close_month", breaks)
    moment = [utcnow()]
    for _attempt in range(8):  # each failure pauses the job; time moves on past each pause
        run_jobs(clock=lambda: moment[0])
        moment[0] += timedelta(hours=1)
    job = the_job(job_id)
    assert job.status is JobStatus.FAILED and job.done == 0
    text = page(client.get(f"/admin/jobs/{job_id}/"))
    assert "disk I/O" not in text and "INSERT" not in text and 'id="job-error"' in text
    assert db.session.scalar(select(func.count()).select_from(BillingMonth)) == 0


def test_the_job_page_script_carries_the_pages_nonce(login_as, client, bureau):
    staff = login_as("staff")
    job_id = queue_import(bureau, staff, by_hand(3))
    response = client.get(f"/admin/jobs/{job_id}/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}" src="/static/js/job_progress.js' in page(response)
    assert 'data-progress-url="/admin/jobs/' in page(response)
