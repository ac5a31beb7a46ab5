"""A USB printer from the config: VID:PID[:serial] reaches libusb, so the serial number
picks one of two identical printers (umockdev: real pyusb and libusb on a fake usbdevfs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from evdev import ecodes

from bridge import config
from bridge.devices import build
from drivers.printer.document import Receipt
from drivers.printer.escpos_printer import ReceiptPrinter
from drivers.printer.status import Query
from drivers.transport.usb import UsbTransport
from tests.drivers import umockdev_helpers as mock

pytestmark = pytest.mark.umockdev

HEALTHY = {q.command: b"\x12" for q in Query}


def usb_printer(usb: str, **fields: Any) -> ReceiptPrinter:
    cfg = config.parse(
        {
            "processing": {"url": "https://p.example/api", "login": "a", "password": "b"},
            "devices": [
                {"name": "till", "kind": "printer", "connection": "usb", "usb": usb, **fields}
            ],
        }
    )
    printer = build.build_device(cfg.devices[0])
    assert isinstance(printer, ReceiptPrinter)
    return printer


@pytest.mark.parametrize("serial", ["ABC123", "XYZ789"])
def test_the_configured_serial_number_picks_the_printer(tb: Any, serial: str) -> None:
    printers = {"ABC123": mock.plug_printer(tb), "XYZ789": mock.plug_twin_printer(tb, "XYZ789")}
    printer = usb_printer(f"04b8:0e15:{serial}", profile="TM-T20II")
    receipt = Receipt().text(f"на принтер {serial}").cut()
    printer.open()
    try:
        printer.claim()
        printer.enable()
        transport = printer.transport
        assert isinstance(transport, UsbTransport) and transport.strings().serial == serial
        printer.print_receipt(receipt)
    finally:
        printer.close()
    assert bytes(printers[serial].received) == printer.render(receipt)
    other = next(fake for name, fake in printers.items() if name != serial)
    assert bytes(other.received) == b""  # the identical twin got nothing


def test_a_serial_number_no_printer_has_is_named(tb: Any) -> None:
    mock.plug_printer(tb)
    printer = usb_printer("04b8:0e15:NOSUCH")
    with pytest.raises(Exception, match="04b8:0e15:NOSUCH"):
        printer.open()
    printer.close()


def test_status_comes_back_from_the_configured_printer(tb: Any) -> None:
    mock.plug_printer(tb)
    twin = mock.plug_twin_printer(tb, "XYZ789", answers=HEALTHY)
    printer = usb_printer("04b8:0e15:XYZ789")
    printer.open()
    try:
        status = printer.status()
    finally:
        printer.close()
    assert status.answered and status.blocking_reason() is None
    assert bytes(twin.received).startswith(Query.PRINTER.command)


# ---------------------------------------------------------------------- keyboard wedges
# python-evdev's ioctls hold the GIL while umockdev's handler (Python, in this process)
# answers them, so the wedge runs in a child under the same testbed, as the service would.

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", ["scanner", "card_reader"])
def test_a_wedge_from_the_config_reads_the_configured_node(tb: Any, kind: str) -> None:
    keyboard = mock.plug_keyboard(tb)
    entry = {"name": "wedge", "kind": kind, "connection": "hid", "port": keyboard.devnode}
    env = dict(os.environ, PYTHONPATH=str(ROOT), UMOCKDEV_DIR=tb.get_root_dir())
    child = subprocess.Popen(
        [sys.executable, __file__, "hid-child", json.dumps(entry)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert json.loads(child.stdout.readline()) == {"power": "online"}
        if kind == "scanner":
            digits = [ecodes.KEY_4, ecodes.KEY_6, ecodes.KEY_0, ecodes.KEY_0, ecodes.KEY_1]
            os.write(keyboard.fd, mock.key_strokes([*digits, ecodes.KEY_ENTER]))
            assert json.loads(child.stdout.readline()) == {"scan": "46001"}
        child.stdin.write("stop\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"stopped": True}
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def _hid_child(entry: str) -> None:
    """The child: the entry through the config and the builder, each scan and power change."""
    from drivers.device import DataEvent, Event, StatusEvent

    def say(**answer: Any) -> None:
        print(json.dumps(answer), flush=True)

    def on_event(event: Event) -> None:
        if isinstance(event, DataEvent):
            say(scan=event.data.text)
        elif isinstance(event, StatusEvent):
            say(power=event.power.value)

    cfg = config.parse(
        {
            "processing": {"url": "https://p.example/api", "login": "a", "password": "b"},
            "devices": [json.loads(entry)],
        }
    )
    driver = build.build_driver(cfg.devices[0])
    assert driver.feeder is not None
    driver.device.add_listener(on_event)
    driver.device.open()
    driver.device.claim()
    driver.device.enable()
    driver.feeder.start()
    sys.stdin.readline()  # any line: stop
    driver.feeder.stop()
    driver.device.close()
    say(stopped=True)


if __name__ == "__main__" and sys.argv[1:2] == ["hid-child"]:
    _hid_child(sys.argv[2])
