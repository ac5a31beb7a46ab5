"""One transport stack: a receipt printer writes through the same Transports as every driver.

What it proves: the serial line settings a printer is built with are the ones the open port
has (read back with termios from a real pty, and from an RFC2217 peer for parity and data
bits, which ptys cannot carry); TCP and file printers get exactly the rendered bytes; a
write-only file never receives a status query; and python-escpos's own generator, fed
through `EscposLink`, reaches the same transports byte for byte (python-escpos's Dummy
printer is the reference for what it generates).
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import socket
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy

from drivers.device import PowerState
from drivers.printer import PrinterConfig, PrinterOffline, ProfileError, Receipt, ReceiptPrinter
from drivers.printer.escpos_link import EscposLink
from drivers.printer.status import PrinterStatus, Query
from drivers.transport import TransportClosed
from drivers.transport.base import Transport
from drivers.transport.file import FileTransport
from drivers.transport.serial import SerialSettings, SerialTransport
from drivers.transport.tcp import TcpTransport

try:
    from tests.drivers.pty_helpers import rfc2217_port
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    from pty_helpers import rfc2217_port  # type: ignore[no-redef,import-not-found]

HEALTHY = {q.command: b"\x12" for q in Query}


class PtyPeer:
    """A printer at the master side of a pty; the slave stays open so termios can be read."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.path = os.ttyname(self.slave)

    def termios(self) -> list[object]:
        return termios.tcgetattr(self.slave)  # the port's settings, shared by every opener

    def recv(self, size: int, timeout: float = 5.0) -> bytes:
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < size and (left := deadline - time.monotonic()) > 0:
            if not select.select([self.master], [], [], left)[0]:
                break
            out += os.read(self.master, size - len(out))
        return out

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def peer() -> Iterator[PtyPeer]:
    made = PtyPeer()
    yield made
    made.close()


def enabled(printer: ReceiptPrinter) -> ReceiptPrinter:
    printer.open()
    printer.claim()
    printer.enable()
    return printer


RECEIPT = Receipt().text("Спасибо за покупку!").barcode("4600000000008").qr("https://x.ru/1").cut()


# --- serial: what the printer is built with is what the port has -------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        SerialSettings(19200, stopbits=2, rtscts=True),
        SerialSettings(38400, xonxoff=True),
        SerialSettings(115200),
    ],
    ids=lambda s: s.short,
)
def test_serial_settings_reach_the_open_pty(peer: PtyPeer, settings: SerialSettings) -> None:
    printer = enabled(ReceiptPrinter("front", SerialTransport(peer.path, settings)))
    try:
        iflag, _oflag, cflag, _lflag, ispeed, ospeed, _cc = peer.termios()
        assert isinstance(iflag, int) and isinstance(cflag, int)
        speed = getattr(termios, f"B{settings.baudrate}")
        assert (ispeed, ospeed) == (speed, speed)
        assert cflag & termios.CSIZE == termios.CS8
        assert not cflag & termios.PARENB
        assert bool(cflag & termios.CSTOPB) is (settings.stopbits == 2)
        assert bool(cflag & termios.CRTSCTS) is settings.rtscts
        assert bool(iflag & termios.IXON) is settings.xonxoff
        assert bool(iflag & termios.IXOFF) is settings.xonxoff
        printer.print_receipt(RECEIPT)
        expected = printer.render(RECEIPT)
        assert peer.recv(len(expected)) == expected
    finally:
        printer.close()


def test_parity_data_bits_and_flow_reach_an_rfc2217_peer() -> None:
    settings = SerialSettings(4800, 7, "E", 2, rtscts=True)
    with rfc2217_port() as server:
        printer = enabled(ReceiptPrinter("front", SerialTransport(server.url, settings)))
        try:
            printer.write(b"\x1b@")
            dev = server.device
            deadline = time.monotonic() + 5
            while dev.parity != "E" and time.monotonic() < deadline:
                printer.transport.read(16, timeout=0.05)  # keeps the telnet channel serviced
            line = (dev.baudrate, dev.bytesize, dev.parity, dev.stopbits, dev.rtscts)
            assert line == (4800, 7, "E", 2, True)
        finally:
            printer.close()


def test_status_over_a_pty_and_unplug_goes_offline(peer: PtyPeer) -> None:
    printer = enabled(
        ReceiptPrinter("front", SerialTransport(peer.path), PrinterConfig(), status_timeout=2.0)
    )

    def answer() -> None:
        asked = b""
        while asked.count(b"\x10\x04") < 4:
            asked += peer.recv(3)
            if asked.endswith(tuple(HEALTHY)):
                os.write(peer.master, b"\x12")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    status = printer.status()
    thread.join(5)
    assert status.blocking_reason() is None and status.answered
    peer.close()  # the cable is pulled
    with pytest.raises(PrinterOffline, match=peer.path):
        printer.print_receipt(RECEIPT)
    assert printer.power is PowerState.OFFLINE
    printer.close()


# --- TCP and file -------------------------------------------------------------------------------


def test_tcp_printer_gets_exactly_the_rendered_bytes() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        printer = enabled(ReceiptPrinter("net", TcpTransport(host, port)))
        conn, _ = server.accept()
        with conn:
            printer.print_receipt(RECEIPT)
            printer.close()
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
    assert received == printer.render(RECEIPT)


def test_write_only_file_gets_no_status_query_and_status_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "capture.bin"
    transport = FileTransport(str(path))
    assert transport.can_read is True  # nothing there yet: it may become a device node
    printer = enabled(ReceiptPrinter("lp", transport))
    assert transport.can_read is False  # a regular file only gives back our own bytes
    assert printer.status() == PrinterStatus()
    printer.print_receipt(RECEIPT)
    printer.close()
    assert path.read_bytes() == printer.render(RECEIPT)  # no DLE EOT went into the capture
    assert FileTransport("/dev/usb/lp0", readable=False).can_read is False


# --- python-escpos's generator over our transports ------------------------------------------------


def escpos_sample(p: object) -> None:
    """The same python-escpos calls for the reference Dummy and for EscposLink."""
    assert hasattr(p, "textln")
    p.hw("INIT")  # type: ignore[attr-defined]
    p.set(align="center", bold=True)  # type: ignore[attr-defined]
    p.textln("SALE 42")  # type: ignore[attr-defined]
    with contextlib.redirect_stdout(io.StringIO()):  # barcode() says which renderer it used
        p.barcode("4600000000008", "EAN13", height=60, width=2)  # type: ignore[attr-defined]
    p.qr("https://example.com/r/42", native=True, size=4)  # type: ignore[attr-defined]
    p.cut()  # type: ignore[attr-defined]


def reference(profile: str) -> bytes:
    dummy = Dummy(profile=profile)
    escpos_sample(dummy)
    return bytes(dummy.output)


def test_escpos_link_over_serial_is_byte_exact(peer: PtyPeer) -> None:
    transport = SerialTransport(peer.path, SerialSettings(115200))
    link = EscposLink(transport, profile="TM-T88V")
    escpos_sample(link)
    expected = reference("TM-T88V")
    assert peer.recv(len(expected)) == expected
    del link  # python-escpos would close its device here; our transport stays open
    assert transport.is_open
    transport.close()


def test_escpos_link_over_tcp_and_file(tmp_path: Path) -> None:
    expected = reference("default")
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        link = EscposLink(TcpTransport(host, port))
        link.open()
        conn, _ = server.accept()
        with conn:
            escpos_sample(link)
            link.close()
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
    assert received == expected

    path = tmp_path / "lp0"
    link = EscposLink(FileTransport(str(path)))
    escpos_sample(link)
    assert link.query_status(Query.PRINTER.command) == b""  # a capture file never answers
    link.close()
    assert path.read_bytes() == expected + Query.PRINTER.command


def test_escpos_link_reports_a_vanished_device_as_transport_closed(peer: PtyPeer) -> None:
    transport: Transport = SerialTransport(peer.path)
    link = EscposLink(transport)
    link.textln("first")
    dummy = Dummy()
    dummy.textln("first")
    assert peer.recv(len(dummy.output)) == dummy.output
    peer.close()
    with pytest.raises(TransportClosed, match=peer.path):
        link.textln("after the unplug")
    assert not transport.is_open


def test_escpos_link_unknown_profile_names_the_known_ones(peer: PtyPeer) -> None:
    with pytest.raises(ProfileError, match=r"unknown printer profile 'TM-NOPE'.*TM-T88V"):
        EscposLink(SerialTransport(peer.path), profile="TM-NOPE")
