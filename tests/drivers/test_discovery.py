"""Discovery without devices: an empty machine, spec checking, matching and rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.discovery import (
    DeviceSpec,
    InputDeviceInfo,
    Inventory,
    NodeKind,
    SerialPortInfo,
    UsbDeviceInfo,
    discover,
    match_devices,
    render_table,
)

SPECS = [
    DeviceSpec("receipt", NodeKind.USB, usb="04b8:0e15"),
    DeviceSpec("scanner", NodeKind.SERIAL, port="/dev/serial/by-id/usb-Honeywell-if00"),
    DeviceSpec("wedge", NodeKind.INPUT, usb="0c2e:0b61"),
]


def test_empty_machine(tmp_path: Path) -> None:
    (tmp_path / "sys").mkdir()
    (tmp_path / "dev").mkdir()
    inventory = discover(SPECS, sysfs=tmp_path / "sys", devfs=tmp_path / "dev")
    assert inventory == Inventory(missing=("receipt", "scanner", "wedge"))
    assert json.loads(json.dumps(inventory.to_json())) == {
        "serial_ports": [],
        "usb_devices": [],
        "input_devices": [],
        "missing": ["receipt", "scanner", "wedge"],
    }
    assert render_table(inventory) == (
        "no serial, USB or input devices found\n"
        "missing: receipt (configured, not found)\n"
        "missing: scanner (configured, not found)\n"
        "missing: wedge (configured, not found)\n"
    )
    assert render_table(discover(sysfs=tmp_path / "sys", devfs=tmp_path / "dev")) == (
        "no serial, USB or input devices found\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "kind": NodeKind.USB, "usb": "04b8:0e15"}, "non-empty name"),
        ({"name": "a/b", "kind": NodeKind.USB, "usb": "04b8:0e15"}, "without '/'"),
        ({"name": "p", "kind": NodeKind.USB}, "kind usb: usb is required"),
        ({"name": "p", "kind": NodeKind.SERIAL}, "kind serial: port or usb is required"),
        ({"name": "p", "kind": NodeKind.INPUT}, "input_path or usb is required"),
        ({"name": "p", "kind": NodeKind.USB, "usb": "4b8:e15"}, "'4b8:e15': expected VID:PID"),
        ({"name": "p", "kind": "printer", "usb": "04b8:0e15"}, "'printer' is not a valid"),
    ],
)
def test_bad_specs_are_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceSpec(**kwargs)  # type: ignore[arg-type]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="must be unique: receipt"):
        match_devices(Inventory(), [SPECS[0], SPECS[0]])


def test_matching_marks_each_found_device() -> None:
    inventory = Inventory(
        serial_ports=(
            SerialPortInfo(
                "/dev/ttyACM0",
                by_id=("/dev/serial/by-id/usb-Honeywell-if00",),
                vid=0x0C2E,
                pid=0x0B62,
            ),
        ),
        usb_devices=(
            UsbDeviceInfo(1, 2, 0x04B8, 0x0E15, "EPSON", "TM-T20", "ABC123", ("printer",)),
            UsbDeviceInfo(
                1,
                4,
                0x0C2E,
                0x0B61,
                "Honeywell",
                "Imaging Scanner",
                None,
                ("hid",),
                sysfs_name="1-4",
            ),
            UsbDeviceInfo(1, 5, 0x04B8, 0x0E28, "EPSON", "TM-T88VI", None, ("printer",)),
        ),
        input_devices=(
            InputDeviceInfo(
                "/dev/input/event7",
                "Honeywell Imaging Scanner",
                vid=0x0C2E,
                pid=0x0B61,
                keyboard_like=True,
                usb_parent="1-4",
            ),
        ),
    )
    matched = match_devices(
        inventory, [*SPECS, DeviceSpec("spare", NodeKind.USB, usb="04b8:0e15:OTHER")]
    )
    assert [p.match for p in matched.serial_ports] == ["scanner"]
    assert [d.match for d in matched.usb_devices] == ["receipt", "wedge", None]
    assert [d.match for d in matched.input_devices] == ["wedge"]
    assert matched.missing == ("spare",)
    table = render_table(matched)
    assert table.splitlines()[0].split() == ["KIND", "DEVICE", "ID", "DESCRIPTION", "CONFIG"]
    assert "/dev/serial/by-id/usb-Honeywell-if00  0c2e:0b62" in table
    assert "04b8:0e15:ABC123  EPSON TM-T20 [printer]" in table
    assert "04b8:0e28" in table and table.rstrip().endswith(
        "missing: spare (configured, not found)"
    )
    assert json.loads(json.dumps(matched.to_json()))["usb_devices"][0] == {
        "bus": 1,
        "address": 2,
        "vid": "04b8",
        "pid": "0e15",
        "manufacturer": "EPSON",
        "product": "TM-T20",
        "serial": "ABC123",
        "classes": ["printer"],
        "sysfs_name": "",
        "match": "receipt",
    }
