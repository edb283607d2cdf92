"""A fault-injecting HTTP proxy for tests: a real TCP server between the app and the register's emulator.

Each request is passed to the emulator unchanged, or answered with a fault instead: a delay, a hang, a connection
reset, a status of our choosing (429 with ``Retry-After``), a raw body (HTML, JSON of the wrong shape), a truncated
body or a body that trickles in a byte at a time. Faults are taken from a queue (``next``) before the standing one
(``always``); every request line is counted in ``requests``, so a test can tell that no retry was made.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

API_PREFIX = "/enhetsregisteret/api"
HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """What the proxy does with one request; build it with the class methods."""

    kind: str
    seconds: float = 0.0
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def passthrough(cls) -> Fault:
        return cls("pass")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait, then pass the request on."""
        return cls("delay", seconds=seconds)

    @classmethod
    def hang(cls, seconds: float = 60.0) -> Fault:
        """Read the request and say nothing for ``seconds`` (or until the proxy stops), then close."""
        return cls("hang", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request and reset the connection (RST), without any answer."""
        return cls("reset")

    @classmethod
    def respond(
        cls,
        status: int,
        body: bytes | str = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer with this status, body and headers instead of the register."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        return cls(
            "respond", status=status, body=raw, headers=(("Content-Type", content_type), *(headers or {}).items())
        )

    @classmethod
    def truncate(cls) -> Fault:
        """Pass the register's answer on with its full Content-Length but only half its body, then close."""
        return cls("truncate")

    @classmethod
    def trickle(cls, seconds_per_byte: float) -> Fault:
        """Pass the register's answer on one body byte at a time, ``seconds_per_byte`` apart."""
        return cls("trickle", seconds=seconds_per_byte)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (its timeout) is what these tests are about


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        conn: socket.socket = self.request
        conn.settimeout(10)
        head = _read_head(conn)
        if head is None:
            return
        proxy._record(head)
        fault = proxy._take()
        try:
            self._serve(proxy, conn, head, fault)
        except OSError:
            pass  # the client hung up first

    def _serve(self, proxy: FaultProxy, conn: socket.socket, head: bytes, fault: Fault) -> None:
        if fault.kind == "hang":
            proxy._stopping.wait(fault.seconds)
            return
        if fault.kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault.kind == "respond":
            lines = [f"HTTP/1.1 {fault.status} Fault", *(f"{k}: {v}" for k, v in fault.headers)]
            lines += [f"Content-Length: {len(fault.body)}", "Connection: close"]
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + fault.body)
            return
        if fault.kind == "delay" and proxy._stopping.wait(fault.seconds):
            return
        answer = proxy._forward(head)
        if fault.kind in ("pass", "delay"):
            conn.sendall(answer)
            return
        response_head, _, body = answer.partition(b"\r\n\r\n")
        if fault.kind == "truncate":
            conn.sendall(response_head + b"\r\n\r\n" + body[: len(body) // 2])
            return
        if fault.kind == "trickle":
            conn.sendall(response_head + b"\r\n\r\n")
            for index in range(len(body)):
                if proxy._stopping.wait(fault.seconds):
                    return
                conn.sendall(body[index : index + 1])
            return
        raise ValueError(f"unknown fault {fault.kind!r}")


def _read_head(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(4096)
        except OSError:
            return None
        if not chunk or len(data) > HEAD_LIMIT:
            return None
        data += chunk
    return data


class FaultProxy:
    """The running proxy in front of ``upstream`` (host, port); use it as a context manager."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.requests: list[str] = []
        self._queue: deque[Fault] = deque()
        self._standing = Fault.passthrough()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake every hanging request."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- faults ----------------------------------------------------------------------------------

    def next(self, fault: Fault, n: int = 1) -> None:
        """The next ``n`` requests get ``fault``."""
        with self._changed:
            self._queue.extend([fault] * n)

    def always(self, fault: Fault) -> None:
        """Every request after the queued faults gets ``fault`` (``Fault.passthrough()`` to heal)."""
        with self._changed:
            self._standing = fault

    def reset(self) -> None:
        """Heal, and forget the request count."""
        with self._changed:
            self._queue.clear()
            self._standing = Fault.passthrough()
            self.requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` requests have arrived (True) or ``timeout`` passed (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout)

    def _take(self) -> Fault:
        with self._changed:
            return self._queue.popleft() if self._queue else self._standing

    def _record(self, head: bytes) -> None:
        target = head.split(b"\r\n", 1)[0].split(b" ")
        path = target[1].decode("latin-1") if len(target) > 1 else ""
        with self._changed:
            self.requests.append(path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path)
            self._changed.notify_all()

    def _forward(self, head: bytes) -> bytes:
        """The emulator's whole answer to ``head`` (it speaks HTTP/1.0: one answer, then it closes)."""
        with socket.create_connection(self.upstream, timeout=10) as upstream:
            upstream.sendall(head)
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)
