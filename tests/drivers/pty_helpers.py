"""Stand-ins for serial hardware: pseudo-terminals, an RFC2217 server, event collection.

A pty slave is a real tty the driver opens by path exactly like /dev/ttyUSB0; closing the
master is what an unplugged USB-serial adapter looks like to pyserial.  Ptys only carry
8N1 and have no modem lines, so parity, 7-bit data and CTS/DSR go through pyserial's own
RFC2217 server in front of a `loop://` port instead.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import serial
import serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as LoopSerial

from drivers.device import Device, Event, PowerState, StatusEvent


class Pty:
    """A pty pair; `path` is what the driver opens, `master` is the device's side."""

    def __init__(self) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)  # no echo or CR/LF games before the driver configures it
        self.path = os.ttyname(slave)
        os.close(slave)  # the slave exists while the master is open; the driver reopens it

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def recv(self, size: int, timeout: float = 2.0) -> bytes:
        """Exactly `size` bytes written by the driver, or fewer if `timeout` passes."""
        out = b""
        while len(out) < size:
            if not select.select([self.master], [], [], timeout)[0]:
                break
            out += os.read(self.master, size - len(out))
        return out

    def unplug(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()


class Events:
    """A listener that records events and lets a test wait for one without sleeping."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def wait_for(
        self, match: Callable[[Event], bool], timeout: float = 5.0, start: int = 0
    ) -> Event:
        """The first event at index >= `start` that matches; AssertionError on timeout."""
        with self._cond:
            found: list[Event] = []

            def ready() -> bool:
                found[:] = [e for e in self.items[start:] if match(e)][:1]
                return bool(found)

            if not self._cond.wait_for(ready, timeout):
                raise AssertionError(f"no matching event within {timeout}s; got {self.items!r}")
            return found[0]

    def of(self, kind: type[Any]) -> list[Any]:
        with self._cond:
            return [e for e in self.items if isinstance(e, kind)]

    def mark(self) -> int:
        with self._cond:
            return len(self.items)


def wait_power(events: Events, device: Device, power: PowerState, start: int = 0) -> StatusEvent:
    event = events.wait_for(
        lambda e: isinstance(e, StatusEvent) and e.device == device.name and e.power is power,
        start=start,
    )
    assert isinstance(event, StatusEvent)
    return event


class _LinesLoop(LoopSerial):  # type: ignore[misc]
    """loop:// whose input modem lines the test sets."""

    lines: dict[str, bool]

    @property
    def cts(self) -> bool:
        return self.lines["cts"]

    @property
    def dsr(self) -> bool:
        return self.lines["dsr"]

    @property
    def ri(self) -> bool:
        return self.lines["ri"]

    @property
    def cd(self) -> bool:
        return self.lines["cd"]


class Rfc2217Port:
    """pyserial's RFC2217 PortManager serving a loop:// port over a loopback socket.

    What the client writes comes back to it (loop); `device` shows the line settings the
    client negotiated and `device.lines` sets the modem lines the client sees.
    """

    def __init__(self) -> None:
        self.device = _LinesLoop()
        self.device.lines = {"cts": False, "dsr": False, "ri": False, "cd": False}
        self.device.port = "loop://"
        self.device.timeout = 0.02
        self.device.open()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self._server.getsockname()[1]}?poll_modem"
        self._server.settimeout(5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return  # closed before any client came
        conn.settimeout(0.02)

        class _Writer:
            def write(self, data: bytes) -> None:
                conn.sendall(data)

        manager = serial.rfc2217.PortManager(self.device, _Writer())
        try:
            while not self._stop.is_set():
                manager.check_modem_lines()
                try:
                    data = conn.recv(1024)
                    if not data:
                        break
                    self.device.write(b"".join(manager.filter(data)))
                except TimeoutError:
                    pass
                looped = self.device.read(self.device.in_waiting or 1)
                if looped:
                    conn.sendall(b"".join(manager.escape(looped)))
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()
        self.device.close()


@contextmanager
def rfc2217_port() -> Iterator[Rfc2217Port]:
    port = Rfc2217Port()
    try:
        yield port
    finally:
        port.close()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))
