"""Discovery on an emulated register: a USB printer, a CDC-ACM scanner and a HID wedge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from drivers.discovery import (
    DeviceSpec,
    InputDeviceInfo,
    NodeKind,
    SerialPortInfo,
    UsbDeviceInfo,
    discover,
    render_table,
)

try:
    from tests.drivers import umockdev_helpers as mock
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

pytestmark = pytest.mark.umockdev


def test_finds_and_matches_printer_tty_and_wedge(tb: Any) -> None:
    mock.plug_printer(tb)
    acm = mock.plug_acm(tb)
    kbd = mock.plug_keyboard(tb)
    serial_link = "/dev/serial/by-id/usb-Honeywell_Imaging_Scanner_CDC_FAKE02-if00"
    input_link = "/dev/input/by-id/usb-Honeywell_Imaging_Scanner_FAKE01-event-kbd"
    mock.add_by_id_link(tb, serial_link, acm.devnode)
    mock.add_by_id_link(tb, input_link, kbd.devnode)
    specs = [
        DeviceSpec("receipt", NodeKind.USB, usb="04b8:0e15:ABC123"),
        DeviceSpec("scanner", NodeKind.SERIAL, port=serial_link),
        DeviceSpec("wedge", NodeKind.INPUT, input_path=input_link),
        DeviceSpec("kitchen", NodeKind.USB, usb="04b8:0e28"),
    ]

    found = discover(specs)

    assert found.serial_ports == (
        SerialPortInfo(
            device=acm.devnode,
            by_id=(serial_link,),
            description="Imaging Scanner CDC - CDC ACM",
            vid=0x0C2E,
            pid=0x0B62,
            serial="FAKE02",
            manufacturer="Honeywell",
            product="Imaging Scanner CDC",
            usb_parent="1-3",
            match="scanner",
        ),
    )
    assert found.usb_devices == (
        UsbDeviceInfo(
            1, 2, 0x04B8, 0x0E15, "EPSON", "TM-T20", "ABC123", ("printer",), "1-1", "receipt"
        ),
        UsbDeviceInfo(
            1, 4, 0x0C2E, 0x0B61, "Honeywell", "Imaging Scanner", "FAKE01", ("hid",), "1-2", "wedge"
        ),
        UsbDeviceInfo(
            1,
            3,
            0x0C2E,
            0x0B62,
            "Honeywell",
            "Imaging Scanner CDC",
            "FAKE02",
            ("cdc",),
            "1-3",
            "scanner",
        ),
    )
    assert found.input_devices == (
        InputDeviceInfo(
            device=kbd.devnode,
            name="Honeywell Imaging Scanner",
            by_id=(input_link,),
            vid=0x0C2E,
            pid=0x0B61,
            keyboard_like=True,
            usb_parent="1-2",
            match="wedge",
        ),
    )
    assert found.missing == ("kitchen",)
    as_json = json.loads(json.dumps(found.to_json()))
    assert [d["match"] for d in as_json["usb_devices"]] == ["receipt", "wedge", "scanner"]
    table = render_table(found)
    assert f"serial  {serial_link}  0c2e:0b62:FAKE02  Honeywell Imaging Scanner CDC" in table
    assert "Honeywell Imaging Scanner [keyboard]" in table
    assert table.endswith("missing: kitchen (configured, not found)\n")


def test_unplugged_devices_disappear(tb: Any) -> None:
    printer = mock.plug_printer(tb)
    spec = DeviceSpec("receipt", NodeKind.USB, usb="04b8:0e15")
    assert [d.match for d in discover([spec]).usb_devices] == ["receipt"]
    mock.unplug_printer(tb, printer)
    assert discover([spec]).usb_devices == ()
    assert discover([spec]).missing == ("receipt",)
