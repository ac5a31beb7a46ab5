"""UsbTransport against an emulated ESC/POS printer: real pyusb and libusb, fake usbdevfs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from drivers.transport import TransportClosed, TransportError
from drivers.transport.usb import UsbId, UsbStrings, UsbTransport

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev

DLE_EOT_PRINTER = b"\x10\x04\x01"


@pytest.fixture
def printer(tb: Any) -> Any:
    return mock.plug_printer(tb, answers={DLE_EOT_PRINTER: b"\x16"})


def test_bulk_write_is_byte_exact_and_status_answer_comes_back(printer: Any) -> None:
    job = b"\x1b@Hello USB\n" + bytes(range(256)) * 3 + b"\x1dV\x00"
    with UsbTransport("04b8:0e15") as usb:
        assert (usb.out_endpoint, usb.in_endpoint) == (0x01, 0x82)
        usb.write(job)
        usb.write(DLE_EOT_PRINTER)
        assert usb.read(1, timeout=2.0) == b"\x16"
    assert bytes(printer.received) == job + DLE_EOT_PRINTER


def test_read_without_answer_times_out_with_empty_bytes(printer: Any) -> None:
    with UsbTransport("04b8:0e15") as usb:
        started = time.monotonic()
        assert usb.read(64, timeout=0.2) == b""
        assert time.monotonic() - started >= 0.19  # libusb really waited, in milliseconds
        printer.answer(b"\x12\x34\x56")
        assert usb.read(2, timeout=2.0) == b"\x12\x34"
        assert usb.read(2, timeout=0.0) == b"\x56"  # the rest of the packet was kept


def test_device_strings_and_serial_selection(printer: Any) -> None:
    with UsbTransport(UsbId.parse("04b8:0e15:ABC123")) as usb:
        assert usb.strings() == UsbStrings("EPSON", "TM-T20", "ABC123")
    with pytest.raises(TransportClosed, match="04b8:0e15:OTHER.*no such USB device"):
        UsbTransport("04b8:0e15:OTHER").open()


def test_configured_endpoint_missing_is_named(printer: Any) -> None:
    with pytest.raises(TransportError, match="no bulk endpoint 0x03"):
        UsbTransport("04b8:0e15", out_endpoint=0x03).open()
    with UsbTransport("04b8:0e15", out_endpoint=0x01, in_endpoint=0x82) as usb:
        usb.write(b"ok")
    assert bytes(printer.received) == b"ok"


def test_unplug_raises_transport_closed_and_closes(tb: Any, printer: Any) -> None:
    usb = UsbTransport("04b8:0e15")
    usb.open()
    usb.write(b"before")
    mock.unplug_printer(tb, printer)
    with pytest.raises(TransportClosed, match="unplugged during write"):
        usb.write(b"after")
    assert not usb.is_open
    with pytest.raises(TransportClosed, match="no such USB device"):
        usb.open()
    assert bytes(printer.received) == b"before"


def test_unplug_during_blocking_read_wakes_the_reader(tb: Any, printer: Any) -> None:
    usb = UsbTransport("04b8:0e15")
    usb.open()
    outcome: list[BaseException | bytes] = []

    def reader() -> None:
        try:
            outcome.append(usb.read(64, timeout=10.0))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    assert printer.in_urb_waiting.wait(5.0)
    started = time.monotonic()
    mock.unplug_printer(tb, printer)
    thread.join(5.0)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5.0
    assert len(outcome) == 1 and isinstance(outcome[0], TransportClosed), outcome
    usb.close()


def test_replug_cycles_leak_no_fds_or_threads(tb: Any) -> None:
    def cycle(i: int) -> None:
        printer = mock.plug_printer(tb)
        usb = UsbTransport("04b8:0e15")
        usb.open()
        usb.write(b"job %d" % i)
        mock.unplug_printer(tb, printer)
        with pytest.raises(TransportClosed):
            usb.write(b"lost")
        usb.close()
        assert bytes(printer.received) == b"job %d" % i

    cycle(0)  # libusb and umockdev set up their own long-lived fds and threads once
    fds, threads = mock.open_fds(), threading.active_count()
    for i in range(1, 101):
        cycle(i)
    after = mock.open_fds()
    assert after - fds == set() and len(after) <= len(fds), (sorted(fds), sorted(after))
    assert threading.active_count() == threads


def test_bound_kernel_driver_is_detached_and_given_back(tb: Any) -> None:
    printer = mock.plug_printer(tb, kernel_driver="usblp")
    with UsbTransport("04b8:0e15") as usb:
        assert printer.driver_log == ["detach usblp"]
        usb.write(b"raw")
    assert printer.driver_log == ["detach usblp", "attach usblp"]
    assert bytes(printer.received) == b"raw"
    with pytest.raises(TransportError, match="no bulk endpoint 0x03"):
        UsbTransport("04b8:0e15", out_endpoint=0x03).open()
    assert printer.driver_log[2:] == ["detach usblp", "attach usblp"]  # a failed open too
    with pytest.raises(TransportError, match="cannot claim interface: .*busy"):
        UsbTransport("04b8:0e15", detach_kernel_driver=False).open()
