"""Connections to the POS API: a header deadline and a cap, so no local process can
crowd the till out.

uvicorn waits for request headers forever (its keep-alive timeout covers only the pause
between requests, and stops at the first byte of the next one), and accepts connections
until the process runs out of file descriptors.  1,100 connections that never finish
their headers, under a 1,024 descriptor limit, locked the till out for over a minute.
Here each connection must finish its request headers within `header_timeout` seconds
of its first byte (of the connection, or of the next request on a kept-alive one), and
at most `max_connections` are open: a new one past the cap closes the connection that
has waited longest without a request in progress, so the till's fresh connection always
gets in.  Every answer given here is problem+json, like the API's own.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bridge.loyalty.protocol import dumps

MAX_HEADER_BYTES = 64 * 1024
FD_RESERVE = 64  # descriptors kept for devices, the journal, processing and logs


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered to fit under the process's descriptor limit with a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


class Guard:
    """What the connections of one server share: the limits, and the open ones oldest
    first (by their last finished request, else by arrival)."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.open: dict[GuardedHttp, None] = {}

    def admit(self, newcomer: GuardedHttp) -> bool:
        """Make room for `newcomer`: close the connection idle the longest, else the
        oldest one still sending a body; False if every open connection has a request
        being answered (the newcomer is then refused with a 503 problem)."""
        if len(self.open) >= self.max_connections:
            victim = self._victim()
            if victim is None:
                return False
            self.forget(victim)
            victim.transport.close()
        self.open[newcomer] = None
        return True

    def _victim(self) -> GuardedHttp | None:
        sending_body = None
        for conn in self.open:
            if not conn.busy():
                return conn
            if sending_body is None and conn.receiving_body():
                sending_body = conn
        return sending_body

    def forget(self, conn: GuardedHttp) -> None:
        self.open.pop(conn, None)

    def touch(self, conn: GuardedHttp) -> None:
        if conn in self.open:
            self.open[conn] = self.open.pop(conn)


def _problem_bytes(status: int, reason: bytes, code: str, detail: str) -> bytes:
    body = dumps(
        {
            "type": "about:blank",
            "title": reason.decode(),
            "status": status,
            "code": code,
            "detail": detail,
            "cashierMessage": None,
        }
    )
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with the guard's deadline and cap (a subclass per
    server, made by `protocol_for`, carries its guard)."""

    guard: ClassVar[Guard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def busy(self) -> bool:
        """A request's headers are in, and its answer is not finished."""
        return self.cycle is not None and not self.cycle.response_complete

    def receiving_body(self) -> bool:
        return self.busy() and self.cycle.more_body and not self.cycle.response_started

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.write(
                _problem_bytes(
                    503,
                    b"Service Unavailable",
                    "too_many_connections",
                    "every POS API connection is answering a request",
                )
            )
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        busy = self.busy()
        if not busy and self._header_timer is None:
            self._arm()
        if not busy or not self.cycle.more_body:
            # the start of the next request (pipelined, when busy): head bytes, not body
            self._header_bytes += len(data)
        super().data_received(data)
        if self.busy():
            self._disarm()  # headers in; the body has its own deadline (the front door)
        if self._header_bytes > self.guard.max_header_bytes:
            self._refuse(
                431,
                b"Request Header Fields Too Large",
                "headers_too_large",
                f"request headers are over {self.guard.max_header_bytes} bytes",
            )

    def on_headers_complete(self) -> None:
        self._header_bytes = 0
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self.guard.touch(self)
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, b"Bad Request", "bad_http", msg)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.guard.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.busy() or self.transport.is_closing():
            return
        if self._header_bytes:
            self._refuse(
                408,
                b"Request Timeout",
                "header_timeout",
                f"request headers did not arrive within {self.guard.header_timeout:g} s",
            )
        else:
            self.transport.close()

    def _refuse(self, status: int, reason: bytes, code: str, detail: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_problem_bytes(status, reason, code, detail))
            self.transport.close()


def protocol_for(guard: Guard) -> type[GuardedHttp]:
    return type("GuardedHttp", (GuardedHttp,), {"guard": guard})
