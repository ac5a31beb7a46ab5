"""The service's devices come from the one builder: a serial printer's line settings and a
scanner's reach their ptys when `DeviceManager` starts them, and a registrar is left to the
fiscal service (its port stays free for it)."""

from __future__ import annotations

import queue
import termios
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import config
from bridge.service.devices import DeviceManager
from bridge.service.events import EventBus
from drivers.printer.document import Receipt
from drivers.transport.serial import SerialSettings, SerialTransport
from tests.drivers.pty_helpers import Pty


class RecordingBus(EventBus):
    """The register's event bus, with a way to wait for one device's status."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: queue.Queue[dict[str, Any]] = queue.Queue()

    def publish(self, kind: str, /, **data: Any) -> dict[str, Any]:
        self.seen.put({"type": kind, **data})
        return super().publish(kind, **data)

    def wait_online(self, device: str) -> None:
        while True:
            event = self.seen.get(timeout=10)
            if event == {**event, "type": "device_status", "device": device, "power": "online"}:
                return


@pytest.fixture
def ptys() -> Iterator[tuple[Pty, Pty, Pty]]:
    with Pty() as printer, Pty() as scanner, Pty() as registrar:
        yield printer, scanner, registrar


def test_the_manager_opens_each_port_as_configured(ptys: tuple[Pty, Pty, Pty]) -> None:
    printer_pty, scanner_pty, registrar_pty = ptys
    cfg = config.parse(
        {
            "processing": {"url": "https://p.example/api", "login": "a", "password": "b"},
            "receipt": {"printer": "receipt", "registrar": "kkt"},
            "devices": [
                {
                    "name": "receipt",
                    "kind": "printer",
                    "connection": "serial",
                    "port": printer_pty.path,
                    "baudrate": 19200,
                    "stopbits": 2,
                    "flow": "rtscts",
                },
                {
                    "name": "scanner",
                    "kind": "scanner",
                    "connection": "serial",
                    "port": scanner_pty.path,
                    "baudrate": 38400,
                    "flow": "xonxoff",
                },
                {
                    "name": "kkt",
                    "kind": "registrar",
                    "connection": "serial",
                    "port": registrar_pty.path,
                    "baudrate": 115200,
                },
            ],
        }
    )
    bus = RecordingBus()
    manager = DeviceManager(cfg, bus, on_card=lambda number, device: None)
    assert set(manager.devices) == {"receipt", "scanner"}  # the registrar is the fiscal side's
    manager.start()
    try:
        job_id, _ = manager.print(Receipt().text("как настроено").cut())
        rendered = manager.queues["receipt"].printer.render(Receipt().text("как настроено").cut())
        got = b""
        while rendered not in got and (chunk := printer_pty.recv(1, timeout=10)):
            got += chunk  # status queries (DLE EOT) come first, unanswered on a pty
        assert got.endswith(rendered)
        iflag, _, cflag, _, speed, _, _ = termios.tcgetattr(printer_pty.master)
        assert speed == termios.B19200 and cflag & termios.CSTOPB and cflag & termios.CRTSCTS
        assert not iflag & termios.IXON
        manager.queues["receipt"].job(job_id)  # known to the queue that printed it
        bus.wait_online("scanner")  # the reader opens its port in its own thread
        iflag, _, cflag, _, speed, _, _ = termios.tcgetattr(scanner_pty.master)
        assert speed == termios.B38400 and iflag & termios.IXON and iflag & termios.IXOFF
        assert not cflag & termios.CRTSCTS
        # nothing holds the registrar's port: the fiscal service can open it exclusively
        with SerialTransport(registrar_pty.path, SerialSettings(baudrate=115200)):
            pass
    finally:
        manager.stop()
