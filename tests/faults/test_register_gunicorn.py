"""Under gunicorn, a hanging register holds neither the workers nor another user's grid.

The real server (2 workers, gthread) on the test database (SQLite file or PostgreSQL, as the run is), the register
behind the fault proxy hanging every request. Four typeaheads are fired at once; once the register has them, another
logged-in user opens the client grid. The grid must answer 200 while every typeahead the register holds is still
waiting: the order of answers is counted, no clock is read.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from extensions import db
from tests.conftest import PASSWORD, TEST_SECRET_KEY
from tests.faults.proxy import Fault, FaultProxy

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# Long enough that the grid, on a busy two-core machine, answers well inside it; the typeaheads wait this long.
BUDGET = "6"
TYPEAHEADS = 4

pytestmark = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn: pip install -e '.[production]'")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(database_url: str, register_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "BRREG_BASE_URL": register_url,
        "REGISTRY_REQUEST_BUDGET": BUDGET,
        "INSTANCE_PATH": str(tmp_path),
    }
    for name in ("APP_ENV", "MAIL_SERVER", "REGISTRY_REQUEST_CONCURRENCY"):
        env.pop(name, None)
    command = [
        str(GUNICORN),
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "app:create_app()",
    ]
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _attempt in range(600):
            if server.poll() is not None:
                pytest.fail(f"gunicorn stopped: {log_path.read_text()}")
            try:
                requests.get(f"{base}/login", timeout=30).close()
                break
            except (requests.ConnectionError, requests.Timeout):
                threading.Event().wait(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def logged_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    response = session.post(
        f"{base}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text
    return session


def test_a_hanging_register_does_not_stall_another_users_grid(
    database_url, bureau, make_staff, make_client, registry_emulator, tmp_path
):
    typist, other = (make_staff(bureau).person.email for _ in range(2))
    make_client(name="Synlig Klient AS")
    # End this process's transaction: on SQLite it would hold the write lock the server's logins need.
    db.session.commit()
    parts = urlsplit(registry_emulator.base_url)
    with FaultProxy((parts.hostname, parts.port)) as proxy, served(database_url, proxy.base_url, tmp_path) as base:
        typing = logged_in(base, typist)
        browsing = logged_in(base, other)
        for _warm_up in range(4):  # both workers have served the grid once, so it is not slow for a first time
            assert browsing.get(f"{base}/admin/clients/", timeout=30).status_code == 200

        proxy.always(Fault.hang(60))
        answers: list[tuple[str, int, dict | None]] = []
        lock = threading.Lock()

        def typeahead(n: int) -> None:
            session = requests.Session()
            session.cookies.update(typing.cookies)
            response = session.get(f"{base}/admin/clients/registry/search/?q=firma{n}", timeout=60)
            with lock:
                answers.append(("typeahead", response.status_code, response.json()))

        threads = [threading.Thread(target=typeahead, args=(n,)) for n in range(TYPEAHEADS)]
        for thread in threads:
            thread.start()
        # Each worker lets at most two calls wait on the register (the others are told at once it is slow):
        # with four typeaheads over two workers, at least two reach the hanging register.
        assert proxy.wait_for_requests(2, timeout=30)
        grid = browsing.get(f"{base}/admin/clients/", timeout=60)
        with lock:
            answers.append(("grid", grid.status_code, None))
        for thread in threads:
            thread.join()

    assert grid.status_code == 200 and "Synlig Klient AS" in grid.text
    waited_on_register = len(proxy.requests)
    assert 2 <= waited_on_register <= TYPEAHEADS  # and none of them was retried
    order = [kind for kind, _status, _body in answers]
    # Only typeaheads refused without waiting can have answered before the grid; every one the register held had not.
    assert order.index("grid") <= TYPEAHEADS - waited_on_register
    for kind, status, body in answers:
        if kind == "typeahead":
            assert status == 503 and body["kind"] == "slow" and "tregt" in body["error"]
