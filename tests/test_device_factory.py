"""What the config says is what the drivers get: every supported (kind, connection) pair,
built through `bridge.devices.build` from a parsed config, opened by its own driver, and
each configured setting read back from the other end of the port.

Serial line settings are read from the pty with termios (baud, stop bits, RTS/CTS,
XON/XOFF; a pty keeps 8 data bits and no parity) and from pyserial's RFC2217 server,
which is told parity and data bits too.  TCP devices are checked at a listener on the
configured host and port, file devices at the configured path, keyboard wedges at the
configured input node.  USB is in tests/test_device_factory_umockdev.py.
"""

from __future__ import annotations

import os
import select
import socket
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.config import DeviceSettings
from bridge.devices import build
from drivers.device import DataEvent, Device, PowerState, StatusEvent
from drivers.fiscal.base import FiscalPrinter
from drivers.msr.tracks import CardSwipe
from drivers.printer.document import Receipt
from drivers.printer.escpos_printer import ReceiptPrinter
from drivers.reconnect import ReconnectingDevice
from drivers.scanner.scan import ScanEvent
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport
from tests.drivers.pty_helpers import Events, Pty, rfc2217_port, wait_power

PROCESSING = {"url": "https://p.example/api", "login": "a", "password": "b"}
PAN = "5555555555554444"
SWIPE = f";{PAN}=27082010000000000?\r".encode()
EAN = b"4006381333931"
READERS = ["scanner", "card_reader"]
SERIAL_KINDS = ["scanner", "card_reader", "printer", "registrar"]


def device(**fields: Any) -> DeviceSettings:
    """The entry as `posbridge run` gets it: through the whole config's validation."""
    cfg = config.parse({"processing": PROCESSING, "devices": [{"name": "dev", **fields}]})
    return cfg.devices[0]


class Opened:
    """A driver built from the entry, opened the way the service opens it."""

    def __init__(self, settings: DeviceSettings) -> None:
        self.events = Events()
        driver = build.build_driver(settings)
        self.device: Device = driver.device
        self.feeder = driver.feeder
        self.device.add_listener(self.events)

    def __enter__(self) -> Opened:
        self.device.open()
        self.device.claim()
        self.device.enable()
        if self.feeder is not None:
            self.feeder.start()
        elif isinstance(self.device, ReconnectingDevice):
            wait_power(self.events, self.device, PowerState.ONLINE)  # the reader opened its port
        return self

    def __exit__(self, *exc: object) -> None:
        if self.feeder is not None:
            self.feeder.stop()
        self.device.close()

    def data(self) -> Any:
        event = self.events.wait_for(lambda e: isinstance(e, DataEvent), timeout=10)
        assert isinstance(event, DataEvent)
        return event.data


def expect_data(opened: Opened, kind: str) -> None:
    """What the other end sent arrived through the driver."""
    data = opened.data()
    if kind == "scanner":
        assert isinstance(data, ScanEvent) and data.text == EAN.decode()
    else:
        assert isinstance(data, CardSwipe) and data.number == PAN


def sent_by_device(kind: str) -> bytes:
    return EAN + b"\r" if kind == "scanner" else SWIPE


# ---------------------------------------------------------------------- serial: pty


def pty_settings(master: int) -> dict[str, Any]:
    iflag, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(master)
    return {
        "speed": (ispeed, ospeed),
        "stopbits": 2 if cflag & termios.CSTOPB else 1,
        "rtscts": bool(cflag & termios.CRTSCTS),
        "ixon": bool(iflag & termios.IXON),
        "ixoff": bool(iflag & termios.IXOFF),
    }


LINES = [
    pytest.param(
        {"baudrate": 19200, "stopbits": 2, "flow": "rtscts"},
        {
            "speed": (termios.B19200, termios.B19200),
            "stopbits": 2,
            "rtscts": True,
            "ixon": False,
            "ixoff": False,
        },
        id="19200-8N2-rtscts",
    ),
    pytest.param(
        {"baudrate": 38400, "flow": "xonxoff"},
        {
            "speed": (termios.B38400, termios.B38400),
            "stopbits": 1,
            "rtscts": False,
            "ixon": True,
            "ixoff": True,
        },
        id="38400-8N1-xonxoff",
    ),
    pytest.param(
        {"baudrate": 115200},
        {
            "speed": (termios.B115200, termios.B115200),
            "stopbits": 1,
            "rtscts": False,
            "ixon": False,
            "ixoff": False,
        },
        id="115200-8N1-none",
    ),
]


@pytest.mark.parametrize("kind", SERIAL_KINDS)
@pytest.mark.parametrize(("line", "expected"), LINES)
def test_serial_line_settings_reach_the_pty(
    kind: str, line: dict[str, Any], expected: dict[str, Any]
) -> None:
    with Pty() as port:
        settings = device(kind=kind, connection="serial", port=port.path, **line)
        before = pty_settings(port.master)
        with Opened(settings) as opened:
            assert pty_settings(port.master) == expected
            if kind in READERS:
                port.send(sent_by_device(kind))
                expect_data(opened, kind)
            elif kind == "printer":
                assert isinstance(opened.device, ReceiptPrinter)
                receipt = Receipt().text("flow control").cut()
                opened.device.print_receipt(receipt)
                rendered = opened.device.render(receipt)
                assert port.recv(len(rendered)) == rendered
        assert before != expected  # the pty did not start out that way


# ---------------------------------------------------------------------- serial: RFC2217


@pytest.fixture
def rfc2217() -> Iterator[Any]:
    with rfc2217_port() as port:
        yield port


@pytest.mark.parametrize("kind", SERIAL_KINDS)
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"baudrate": 4800, "bytesize": 7, "parity": "E", "stopbits": 2, "flow": "rtscts"},
            (4800, 7, "E", 2, True, False),
        ),
        (
            {"baudrate": 57600, "bytesize": 8, "parity": "O", "flow": "xonxoff"},
            (57600, 8, "O", 1, False, True),
        ),
    ],
    ids=["4800-7E2-rtscts", "57600-8O1-xonxoff"],
)
def test_serial_line_settings_reach_an_rfc2217_port(
    rfc2217: Any, kind: str, line: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    settings = device(kind=kind, connection="serial", port=rfc2217.url, **line)
    with Opened(settings):
        peer = rfc2217.device
        got = (peer.baudrate, peer.bytesize, peer.parity, peer.stopbits, peer.rtscts, peer.xonxoff)
        assert got == expected


def test_a_registrar_gets_its_password_and_serial_port() -> None:
    settings = device(
        kind="registrar", connection="serial", port="/dev/ttyS7", baudrate=115200, password=7
    )
    registrar = build.build_device(settings)
    transport = registrar.transport  # type: ignore[attr-defined]
    assert isinstance(transport, SerialTransport)
    assert (transport.url, transport.settings.short) == ("/dev/ttyS7", "115200 8N1")
    assert registrar._password == 7  # type: ignore[attr-defined]
    assert "7" not in repr(registrar).replace("ttyS7", "")


@pytest.mark.parametrize("connection", ["serial", "tcp"])
def test_a_registrar_from_the_config_prints_on_the_emulator(connection: str) -> None:
    from sandbox.registrar.emulator import RegistrarEmulator

    emulator = RegistrarEmulator(password=7)
    try:
        if connection == "serial":
            where: dict[str, Any] = {"port": emulator.start_pty(), "baudrate": 115200}
        else:
            where = {"host": "127.0.0.1", "tcp_port": emulator.start_tcp()}
        settings = device(kind="registrar", connection=connection, password=7, **where)
        with Opened(settings) as opened:
            registrar = opened.device
            assert isinstance(registrar, FiscalPrinter)
            assert registrar.status().fn_present is not False
            registrar.print_normal([f"config check over {connection}"])
        assert f"config check over {connection}" in emulator.paper_text()
    finally:
        emulator.stop()


# ---------------------------------------------------------------------- TCP


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        yield server


@pytest.mark.parametrize("kind", ["scanner", "card_reader", "printer", "registrar"])
def test_tcp_host_and_port_reach_the_listener(listener: socket.socket, kind: str) -> None:
    host, port = listener.getsockname()
    settings = device(kind=kind, connection="tcp", host=host, tcp_port=port)
    with Opened(settings) as opened:
        peer, (client_host, _) = listener.accept()
        with peer:
            assert client_host == "127.0.0.1"
            if kind in READERS:
                peer.sendall(sent_by_device(kind))
                expect_data(opened, kind)
            elif kind == "printer":
                assert isinstance(opened.device, ReceiptPrinter)
                receipt = Receipt().text("over tcp").cut()
                opened.device.print_receipt(receipt)
                rendered = opened.device.render(receipt)
                got = b""
                while len(got) < len(rendered) and select.select([peer], [], [], 10)[0]:
                    got += peer.recv(4096)
                assert got == rendered


@pytest.mark.parametrize(
    ("kind", "port"), [("registrar", 7778), ("printer", 9100), ("scanner", 9100)]
)
def test_tcp_port_defaults_by_kind(kind: str, port: int) -> None:
    transport = build.transport(device(kind=kind, connection="tcp", host="192.0.2.10"))
    assert isinstance(transport, TcpTransport) and (transport.host, transport.port) == (
        "192.0.2.10",
        port,
    )


# ---------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", READERS)
def test_a_reader_on_a_file_reads_the_configured_path(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "reader.fifo"
    os.mkfifo(fifo)
    with Opened(device(kind=kind, connection="file", port=str(fifo))) as opened:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the driver holds the reading end
        try:
            os.write(fd, sent_by_device(kind))
        finally:
            os.close(fd)
        expect_data(opened, kind)


def test_a_printer_on_a_file_writes_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    settings = device(kind="printer", connection="file", port=str(path), paper_mm=58)
    with Opened(settings) as opened:
        printer = opened.device
        assert isinstance(printer, ReceiptPrinter)
        assert printer.config.paper_width_mm == 58
        receipt = Receipt().text("в файл").cut()
        printer.print_receipt(receipt)
        assert printer.status().answered is False  # a file never answers: no queries sent
    assert path.read_bytes() == printer.render(receipt)
    assert (path.stat().st_mode & 0o777) == 0o600


# ---------------------------------------------------------------------- keyboard wedges


@pytest.mark.parametrize("kind", READERS)
def test_a_wedge_is_fed_from_the_configured_input_node(tmp_path: Path, kind: str) -> None:
    node = str(tmp_path / "event-kbd")  # absent: the feeder says which node it tried
    with Opened(device(kind=kind, connection="hid", port=node)) as opened:
        assert opened.feeder is not None and opened.feeder.device is opened.device
        event = opened.events.wait_for(
            lambda e: isinstance(e, StatusEvent) and e.power is PowerState.OFFLINE
        )
        assert isinstance(event, StatusEvent) and node in str(event.detail["reason"])


# ---------------------------------------------------------------------- the one path


def test_every_supported_pair_builds(tmp_path: Path) -> None:
    """Nothing outside bridge.devices.build decides what a pair becomes."""
    from bridge.supported_devices import SUPPORTED

    address = {
        "serial": {"port": "/dev/ttyS0"},
        "usb": {"usb": "04b8:0e15:ABC123"},
        "tcp": {"host": "127.0.0.1"},
        "file": {"port": str(tmp_path / "f")},
        "hid": {"port": "/dev/input/event3"},
    }
    for kind, connections in SUPPORTED.items():
        for connection in connections:
            driver = build.build_driver(
                device(kind=kind, connection=connection, **address[connection])
            )
            assert driver.device.name == "dev"
            assert (driver.feeder is not None) == (connection == "hid"), (kind, connection)
