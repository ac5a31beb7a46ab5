"""A TCP proxy on loopback in front of a real HTTP/1.1 server, with network faults on command.

The client talks to the proxy over a real socket and the proxy forwards the client's
exact bytes to the real server, so whatever the fault, processing either saw the very
request the register sent or nothing at all.  Faults:

- ``pass``: forward both ways.
- ``refuse``: the listener is closed (connect is refused) and open connections are cut.
- ``reset``: forward the request, wait for the whole answer, send the client part of it,
  then RST: the request WAS processed, the register never learns it.
- ``stall``: forward the request, then hold the answer past the client's read timeout
  (until the fault changes or the client gives up); the request WAS processed.
- ``status``: answer an HTTP error status (``status=``) and close; with ``forward=True``
  the request is processed first (a gateway that timed out on a live backend).
- ``garbage``: answer 200 with a body that is not contract JSON (``body=``); with
  ``forward=True`` the request is processed first.
- ``trickle``: forward the request, then send the real answer one byte every
  ``interval`` seconds (each read is quick, the whole answer is not).
- ``headers``: forward the request, send the answer's headers, then nothing.
- ``blackhole``: read the request, never forward it, never answer.
- ``huge``: answer 200 with a 100 MB ``Content-Length`` and stream spaces until the client
  hangs up; ``endless``: a chunked answer that never ends.  ``forward=True``: processed first.

Every connection the client hung up on while a fault held it is counted (`hangups`,
`wait_hangups`): the register must drop a connection it gave up on.

``only=`` limits a fault to requests whose path ends with it (say, the redemption).

h11 finds where each request and answer ends, so keep-alive connections get one fault
decision per request.  Every request is recorded with the fault it met and whether it
reached the server (`events`).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h11

KINDS = (
    "pass",
    "refuse",
    "reset",
    "stall",
    "status",
    "garbage",
    "trickle",
    "headers",
    "blackhole",
    "huge",
    "endless",
)
HUGE_LENGTH = 100_000_000
_FLOOD = b" " * 65536
GARBAGE = b"<html><body><h1>Service temporarily overloaded</h1></body></html>"


@dataclass(frozen=True)
class Fault:
    kind: str = "pass"
    status: int = 500
    forward: bool = False
    body: bytes = GARBAGE
    content_type: str = "text/html"
    only: str | None = None  # the fault hits requests whose path ends so; others pass
    interval: float = 0.2  # trickle: seconds between two bytes

    def hits(self, path: str) -> bool:
        return self.only is None or path.endswith(self.only)


@dataclass(frozen=True)
class Event:
    method: str
    path: str
    fault: str
    forwarded: bool  # the server processed the request
    answered: bool  # the client got the server's answer intact
    at: float = field(default_factory=time.monotonic, compare=False)  # when it was recorded


@dataclass
class _Request:
    raw: bytes
    events: list[h11.Event] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.events: list[Event] = []
        self.hangups = 0  # connections the client closed while a fault held them
        self._seen = threading.Condition()
        self._fault = Fault()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._released: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        self._call(self._init())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/publicapi"

    @property
    def fault(self) -> Fault:
        return self._fault

    def set_fault(
        self,
        kind: str,
        *,
        status: int = 500,
        forward: bool = False,
        body: bytes = GARBAGE,
        content_type: str = "text/html",
        only: str | None = None,
        interval: float = 0.2,
    ) -> None:
        """Switch the fault; returns once the listener is closed or open again.

        `only`: a path suffix (e.g. "/Bonus/Payment"); other requests pass through.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "refuse" and only is not None:
            raise ValueError("a refused listener refuses every request; 'only' does not apply")
        self._call(self._switch(Fault(kind, status, forward, body, content_type, only, interval)))

    def wait_event(self, match: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first recorded request `match` accepts, waiting for it (no polling)."""
        found: list[Event] = []

        def seen() -> bool:
            found[:] = [e for e in self.events if match(e)][:1]
            return bool(found)

        with self._seen:
            if not self._seen.wait_for(seen, timeout):
                raise TimeoutError("the proxy saw no such request")
        return found[0]

    def wait_hangups(self, count: int, timeout: float = 10.0) -> None:
        with self._seen:
            if not self._seen.wait_for(lambda: self.hangups >= count, timeout):
                raise TimeoutError(f"{self.hangups} hang-ups, expected {count}")

    def _record(self, event: Event) -> None:
        with self._seen:
            self.events.append(event)
            self._seen.notify_all()

    def _hung_up(self) -> None:
        with self._seen:
            self.hangups += 1
            self._seen.notify_all()

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # ------------------------------------------------------------------ loop side

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _init(self) -> None:
        self._released = asyncio.Event()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, fault: Fault) -> None:
        old, self._fault = self._fault, fault
        assert self._released is not None
        if old.kind == "stall" and fault.kind != "stall":
            self._released.set()  # stalled answers are dropped: their clients gave up long ago
            self._released = asyncio.Event()
        if fault.kind == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
            for writer in list(self._clients):
                writer.transport.abort()
        elif fault.kind != "refuse" and self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        if self._released is not None:
            self._released.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._clients):
            writer.transport.abort()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._clients.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        pending = b""
        try:
            while True:
                got = await _read_request(reader, pending)
                if got is None:
                    return
                request, pending = got
                head = next(e for e in request.events if isinstance(e, h11.Request))
                method, path = head.method.decode(), head.target.decode()
                fault = self._fault if self._fault.hits(path) else Fault()
                if fault.kind == "refuse":
                    return
                if fault.kind in ("status", "garbage") and not fault.forward:
                    writer.write(_answer(fault))
                    await writer.drain()
                    self._record(Event(method, path, fault.kind, False, False))
                    return
                if fault.kind in ("huge", "endless") and not fault.forward:
                    self._record(Event(method, path, fault.kind, False, False))
                    await self._flood(writer, fault.kind)
                    return
                if fault.kind == "blackhole":
                    self._record(Event(method, path, fault.kind, False, False))
                    if await self._hold(reader):
                        self._hung_up()
                    return
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.upstream)
                upstream[1].write(request.raw)
                await upstream[1].drain()
                answer, keep = await _read_response(upstream[0], request)
                if not keep:
                    upstream[1].close()
                    upstream = None
                fault = self._fault if self._fault.hits(path) else Fault()  # met by the answer
                intact = fault.kind == "pass"
                self._record(Event(method, path, fault.kind, True, intact))
                if intact:
                    writer.write(answer)
                    await writer.drain()
                    if not keep:
                        return
                    continue
                if fault.kind == "reset":
                    writer.write(answer[: len(answer) // 2])
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                elif fault.kind == "stall":
                    await self._hold(reader)
                elif fault.kind == "headers":
                    writer.write(answer[: answer.index(b"\r\n\r\n") + 4])
                    await writer.drain()
                    if await self._hold(reader):
                        self._hung_up()
                elif fault.kind == "trickle":
                    await self._trickle(writer, answer, fault.interval)
                elif fault.kind in ("huge", "endless"):
                    await self._flood(writer, fault.kind)
                elif fault.kind in ("status", "garbage"):
                    writer.write(_answer(fault))
                    await writer.drain()
                return
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            self._clients.discard(writer)
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _hold(self, reader: asyncio.StreamReader) -> bool:
        """Until the stall is lifted or the client hangs up (then True)."""
        assert self._released is not None
        hangup = asyncio.ensure_future(reader.read(1))
        waits = {asyncio.ensure_future(self._released.wait()), hangup}
        _, rest = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in rest:
            task.cancel()
        return hangup.done() and not hangup.cancelled() and not hangup.exception()

    async def _trickle(self, writer: asyncio.StreamWriter, answer: bytes, interval: float) -> None:
        """The whole answer, one byte at a time, until the client hangs up."""
        try:
            for i in range(len(answer)):
                writer.write(answer[i : i + 1])
                await writer.drain()
                await asyncio.sleep(interval)  # the fault itself: a slow peer, not a wait
                if writer.transport.is_closing():
                    break
        except ConnectionError:
            pass
        self._hung_up()

    async def _flood(self, writer: asyncio.StreamWriter, kind: str) -> None:
        """A 200 answer of 100 MB, or one that never ends, until the client hangs up."""
        if kind == "huge":
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {HUGE_LENGTH}\r\n\r\n"
            ).encode()
        else:
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
        chunk = _FLOOD if kind == "huge" else b"%x\r\n%s\r\n" % (len(_FLOOD), _FLOOD)
        sent = 0
        try:
            writer.write(head)
            while kind == "endless" or sent < HUGE_LENGTH:
                writer.write(chunk)
                sent += len(_FLOOD)
                await writer.drain()
        except ConnectionError:
            self._hung_up()


async def _read_request(
    reader: asyncio.StreamReader, pending: bytes
) -> tuple[_Request, bytes] | None:
    """One whole request (raw bytes and parsed events) and the bytes after it; None on EOF."""
    conn = h11.Connection(h11.SERVER)
    request = _Request(b"")
    data = pending
    while True:
        if data:
            conn.receive_data(data)
            request.raw += data
            data = b""
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                return None
            continue
        assert isinstance(event, h11.Event)
        request.events.append(event)
        if isinstance(event, h11.EndOfMessage):
            rest = conn.trailing_data[0]
            if rest:
                request.raw = request.raw[: -len(rest)]
            return request, rest


async def _read_response(reader: asyncio.StreamReader, request: _Request) -> tuple[bytes, bool]:
    """The server's whole answer and whether its connection stays open."""
    conn = h11.Connection(h11.CLIENT)
    for event in request.events:  # h11 reads an answer only to a request it saw sent
        conn.send(event)
    raw = b""
    while True:
        got = conn.next_event()
        if got is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            raw += data
            continue
        if isinstance(got, h11.EndOfMessage):
            return raw, conn.their_state is h11.DONE and conn.our_state is h11.DONE
        if isinstance(got, h11.ConnectionClosed):
            raise ConnectionError("the server closed the connection mid-answer")


def _answer(fault: Fault) -> bytes:
    """The proxy's own answer: an error status, or a 200 whose body is not contract JSON."""
    if fault.kind == "garbage":
        status, reason, body, ctype = 200, "OK", fault.body, fault.content_type
    else:
        status, reason = fault.status, "Proxy Error"
        body, ctype = f"proxy: HTTP {status}".encode(), "text/plain"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@contextmanager
def fault_proxy(upstream_host: str, upstream_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_host, upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()
