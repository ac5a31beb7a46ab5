"""The printer over UsbTransport, on emulated USB printers (umockdev).

Real pyusb and libusb run against a fake usbdevfs; the bytes the "printer" receives and the
DLE EOT answers it sends back are the USB bulk transfers a real TM printer would see.
"""

from __future__ import annotations

from typing import Any

import pytest
from escpos.printer import Dummy

from drivers.device import Flag, PowerState
from drivers.printer import PrinterConfig, PrinterOffline, Receipt, ReceiptPrinter
from drivers.printer.escpos_link import EscposLink
from drivers.printer.status import PrinterStatus, Query
from drivers.transport.usb import UsbTransport

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    try:
        import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]
    except ImportError:
        pytest.skip(
            "tests/drivers/umockdev_helpers.py (USB stand-in) is not in this checkout",
            allow_module_level=True,
        )

pytestmark = pytest.mark.umockdev

HEALTHY_NEAR_END = {
    Query.PRINTER.command: b"\x12",
    Query.OFFLINE_CAUSE.command: b"\x12",
    Query.ERROR_CAUSE.command: b"\x12",
    Query.ROLL_PAPER.command: b"\x1e",
}


def usb_printer(device: str = "04b8:0e15") -> ReceiptPrinter:
    printer = ReceiptPrinter(
        "usb", UsbTransport(device), PrinterConfig(profile="TM-T20II"), status_timeout=0.3
    )
    printer.open()
    printer.claim()
    printer.enable()
    return printer


def test_receipt_over_usb_is_byte_exact(tb: Any) -> None:
    fake = mock.plug_printer(tb, answers=HEALTHY_NEAR_END)
    printer = usb_printer()
    try:
        receipt = Receipt().text("Покупка по карте").barcode("4600000000008").cut()
        printer.print_receipt(receipt)
    finally:
        printer.close()
    assert bytes(fake.received) == printer.render(receipt)


def test_status_over_usb_bulk_in(tb: Any) -> None:
    mock.plug_printer(tb, answers=HEALTHY_NEAR_END)
    printer = usb_printer()
    try:
        status = printer.status()
    finally:
        printer.close()
    assert status.online is Flag.TRUE and status.paper_near_end is Flag.TRUE
    assert status.paper_empty is Flag.FALSE and status.blocking_reason() is None


def test_serial_number_picks_one_of_two_identical_printers(tb: Any) -> None:
    first = mock.plug_printer(tb)
    second = mock.plug_twin_printer(tb, "XYZ789")
    receipt = Receipt().text("Касса 2").cut()
    printer = usb_printer("04b8:0e15:XYZ789")
    try:
        printer.print_receipt(receipt)
    finally:
        printer.close()
    assert bytes(second.received) == printer.render(receipt)
    assert bytes(first.received) == b""

    printer = usb_printer("04b8:0e15:ABC123")
    try:
        printer.print_receipt(Receipt().text("Касса 1"))
    finally:
        printer.close()
    assert "Касса 1".encode("cp866") in bytes(first.received)
    assert "Касса 1".encode("cp866") not in bytes(second.received)


def test_unknown_serial_number_is_offline_and_named(tb: Any) -> None:
    mock.plug_printer(tb)
    printer = ReceiptPrinter("usb", UsbTransport("04b8:0e15:NOPE"))
    with pytest.raises(PrinterOffline, match="04b8:0e15:NOPE.*no such USB device"):
        printer.open()
    assert printer.power is PowerState.OFFLINE


def test_unplugged_usb_printer_goes_offline(tb: Any) -> None:
    fake = mock.plug_printer(tb, answers=HEALTHY_NEAR_END)
    printer = usb_printer()
    mock.unplug_printer(tb, fake)
    with pytest.raises(PrinterOffline, match="usb:04b8:0e15"):
        printer.print_receipt(Receipt().text("после отключения"))
    assert printer.power is PowerState.OFFLINE
    assert printer.status() == PrinterStatus()
    printer.close()


def test_escpos_link_over_usb_is_byte_exact(tb: Any) -> None:
    fake = mock.plug_printer(tb, answers={Query.PRINTER.command: b"\x12"})
    link = EscposLink(UsbTransport("04b8:0e15"), profile="TM-T20II")
    link.hw("INIT")
    link.textln("USB")
    link.qr("https://example.com/r/7", native=True, size=4)
    assert link.query_status(Query.PRINTER.command) == b"\x12"
    link.close()
    dummy = Dummy(profile="TM-T20II")
    dummy.hw("INIT")
    dummy.textln("USB")
    dummy.qr("https://example.com/r/7", native=True, size=4)
    assert bytes(fake.received) == dummy.output + Query.PRINTER.command
