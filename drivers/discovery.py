"""What is plugged into this register, and which configured device each thing is.

A technician setting up a register needs to see the serial ports, USB devices and input
devices the machine has, with the names to put in the config file, and which config entry
each one already matches.  Like Odoo IoT's "interfaces", finding devices is kept apart
from driving them: nothing here opens a device, so it is safe while posbridge runs and
needs no more rights than reading sysfs.  Nothing is registered globally either: every
call enumerates afresh and returns plain dataclasses that turn into JSON.

USB and input devices are read from sysfs, the same attributes udev reads; serial ports
come from pyserial's `list_ports`.  `sysfs` and `devfs` may point at another tree (tests,
a chroot); serial ports are then limited to the nodes present under that `devfs`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from serial.tools import list_ports

from drivers.transport.usb import UsbId

SYSFS = Path("/sys")
DEVFS = Path("/dev")

_USB_CLASSES = {
    0x02: "cdc",
    0x03: "hid",
    0x07: "printer",
    0x08: "storage",
    0x09: "hub",
    0x0A: "cdc-data",
    0x0E: "video",
    0xE0: "wireless",
    0xFF: "vendor",
}
_EV_KEY = 0x01
_KEY_ENTER = 28
_KEY_1_TO_0 = range(2, 12)


class NodeKind(enum.StrEnum):
    """Which kind of system node a configured device is found as (what the device is, a
    scanner or a printer, is the config's DeviceKind, bridge.supported_devices)."""

    SERIAL = "serial"  # a tty: RS-232, USB-serial, CDC-ACM
    USB = "usb"  # bulk endpoints through libusb
    INPUT = "input"  # keyboard wedge through evdev


@dataclass(frozen=True)
class DeviceSpec:
    """One configured device, as far as finding it goes.

    `port` (serial), `usb` (VID:PID[:serial]) or `input_path` names it, by `kind`.  Serial
    and input devices may be named by `usb` instead, to match them by VID:PID wherever they
    are plugged.
    """

    name: str
    kind: NodeKind
    port: str | None = None
    usb: str | None = None
    input_path: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.strip() != self.name:
            raise ValueError(f"device name {self.name!r}: use a non-empty name without '/'")
        object.__setattr__(self, "kind", NodeKind(self.kind))  # "usb" from a config file
        if self.usb is not None:
            UsbId.parse(self.usb)  # raises ValueError naming the bad text
        given = {
            NodeKind.SERIAL: self.port or self.usb,
            NodeKind.USB: self.usb,
            NodeKind.INPUT: self.input_path or self.usb,
        }[self.kind]
        if given is None:
            what = {
                NodeKind.SERIAL: "port or usb",
                NodeKind.USB: "usb",
                NodeKind.INPUT: "input_path or usb",
            }[self.kind]
            raise ValueError(f"device {self.name!r} of kind {self.kind}: {what} is required")

    @property
    def usb_id(self) -> UsbId | None:
        return None if self.usb is None else UsbId.parse(self.usb)


@dataclass(frozen=True)
class SerialPortInfo:
    device: str
    by_id: tuple[str, ...] = ()
    description: str | None = None
    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    usb_parent: str | None = None  # sysfs name of the USB device it belongs to, e.g. "1-3"
    match: str | None = None  # name of the configured device it matches


@dataclass(frozen=True)
class UsbDeviceInfo:
    bus: int
    address: int
    vid: int
    pid: int
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    classes: tuple[str, ...] = ()  # device and interface classes: printer, hid, cdc, ...
    sysfs_name: str = ""
    match: str | None = None

    @property
    def usb_id(self) -> str:
        return str(UsbId(self.vid, self.pid, self.serial))


@dataclass(frozen=True)
class InputDeviceInfo:
    device: str
    name: str | None = None
    by_id: tuple[str, ...] = ()
    vid: int | None = None
    pid: int | None = None
    keyboard_like: bool = False
    usb_parent: str | None = None
    match: str | None = None


@dataclass(frozen=True)
class Inventory:
    serial_ports: tuple[SerialPortInfo, ...] = ()
    usb_devices: tuple[UsbDeviceInfo, ...] = ()
    input_devices: tuple[InputDeviceInfo, ...] = ()
    missing: tuple[str, ...] = field(default=())  # configured devices found nowhere

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only: ids as "04b8"-style hex strings, as lsusb and udev show."""

        def fix(row: dict[str, Any]) -> dict[str, Any]:
            for key in ("vid", "pid"):
                if isinstance(row.get(key), int):
                    row[key] = f"{row[key]:04x}"
            for key, value in row.items():
                if isinstance(value, tuple):
                    row[key] = list(value)
            return row

        return {
            "serial_ports": [fix(asdict(p)) for p in self.serial_ports],
            "usb_devices": [fix(asdict(d)) for d in self.usb_devices],
            "input_devices": [fix(asdict(d)) for d in self.input_devices],
            "missing": list(self.missing),
        }


# enumeration -----------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _hex(text: str | None) -> int | None:
    try:
        return None if text is None else int(text, 16)
    except ValueError:
        return None


def _links(directory: Path) -> dict[str, list[str]]:
    """Persistent names (by-id) per real device node, named as under /dev."""
    found: dict[str, list[str]] = {}
    if not directory.is_dir():
        return found
    for link in sorted(directory.iterdir()):
        if link.is_symlink():
            target = Path(os.path.normpath(link.parent / os.readlink(link)))
            found.setdefault(target.name, []).append(str(link))
    return found


def _as_dev(path: Path, devfs: Path) -> str:
    """The /dev name of a node found under `devfs`, as the config file would spell it."""
    return str(DEVFS / path.relative_to(devfs))


def list_serial_ports(*, devfs: Path = DEVFS) -> list[SerialPortInfo]:
    by_id = _links(devfs / "serial" / "by-id")
    ports = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        node = (
            devfs / Path(port.device).relative_to(DEVFS)
            if port.device.startswith("/dev/")
            else Path(port.device)
        )
        if devfs != DEVFS and not node.exists():
            continue
        links = [_as_dev(Path(link), devfs) for link in by_id.get(Path(port.device).name, [])]
        ports.append(
            SerialPortInfo(
                device=port.device,
                by_id=tuple(links),
                description=None if port.description in (None, "n/a") else port.description,
                vid=port.vid,
                pid=port.pid,
                serial=port.serial_number,
                manufacturer=port.manufacturer,
                product=port.product,
                usb_parent=port.location.split(":")[0] if port.location else None,
            )
        )
    return ports


def list_usb_devices(*, sysfs: Path = SYSFS) -> list[UsbDeviceInfo]:
    devices: list[UsbDeviceInfo] = []
    root = sysfs / "bus" / "usb" / "devices"
    if not root.is_dir():
        return devices
    for entry in sorted(root.iterdir()):
        vid, pid = _hex(_read(entry / "idVendor")), _hex(_read(entry / "idProduct"))
        if ":" in entry.name or vid is None or pid is None:
            continue  # an interface, or a device without ids
        classes: list[str] = []
        interfaces = sorted(entry.glob(f"{entry.name}:*/bInterfaceClass"))
        for path in [entry / "bDeviceClass", *interfaces]:
            code = _hex(_read(path))
            name = _USB_CLASSES.get(code) if code else None
            if name and name not in classes:
                classes.append(name)
        devices.append(
            UsbDeviceInfo(
                bus=int(_read(entry / "busnum") or 0),
                address=int(_read(entry / "devnum") or 0),
                vid=vid,
                pid=pid,
                manufacturer=_read(entry / "manufacturer"),
                product=_read(entry / "product"),
                serial=_read(entry / "serial"),
                classes=tuple(classes),
                sysfs_name=entry.name,
            )
        )
    return devices


def _bitmap(text: str | None) -> set[int]:
    """A sysfs capability bitmap: hex words, most significant first, of the long size."""
    bits: set[int] = set()
    if not text:
        return bits
    word_bits = 64 if all(len(w) <= 16 for w in text.split()) else 32
    for index, word in enumerate(reversed(text.split())):
        value = int(word, 16)
        bits.update(index * word_bits + b for b in range(word_bits) if value >> b & 1)
    return bits


def _usb_parent(entry: Path) -> str | None:
    """The USB device (a sysfs dir with idVendor) above a class device, if any."""
    path = entry.resolve()
    for parent in path.parents:
        if (parent / "idVendor").exists() and ":" not in parent.name:
            return parent.name
    return None


def list_input_devices(*, sysfs: Path = SYSFS, devfs: Path = DEVFS) -> list[InputDeviceInfo]:
    devices: list[InputDeviceInfo] = []
    by_id = _links(devfs / "input" / "by-id")
    root = sysfs / "class" / "input"
    if not root.is_dir():
        return devices
    for entry in sorted(root.glob("event*"), key=lambda p: int(p.name[5:] or 0)):
        parent = entry / "device"  # the inputN node that holds name, ids and capabilities
        events = _bitmap(_read(parent / "capabilities" / "ev"))
        keys = _bitmap(_read(parent / "capabilities" / "key"))
        keyboard = _EV_KEY in events and _KEY_ENTER in keys and set(_KEY_1_TO_0) <= keys
        devices.append(
            InputDeviceInfo(
                device=str(DEVFS / "input" / entry.name),
                name=_read(parent / "name"),
                by_id=tuple(_as_dev(Path(link), devfs) for link in by_id.get(entry.name, [])),
                vid=_hex(_read(parent / "id" / "vendor")),
                pid=_hex(_read(parent / "id" / "product")),
                keyboard_like=keyboard,
                usb_parent=_usb_parent(entry),
            )
        )
    return devices


# matching --------------------------------------------------------------------------------


def _usb_matches(spec: DeviceSpec, vid: int | None, pid: int | None, serial: str | None) -> bool:
    wanted = spec.usb_id
    return bool(
        wanted
        and wanted.vid == vid
        and wanted.pid == pid
        and (wanted.serial is None or wanted.serial == serial)
    )


def _match_serial(port: SerialPortInfo, specs: Sequence[DeviceSpec]) -> str | None:
    for spec in specs:
        if spec.kind is not NodeKind.SERIAL:
            continue
        if spec.port is not None and spec.port in (port.device, *port.by_id):
            return spec.name
        if spec.port is None and _usb_matches(spec, port.vid, port.pid, port.serial):
            return spec.name
    return None


def _match_input(dev: InputDeviceInfo, specs: Sequence[DeviceSpec]) -> str | None:
    for spec in specs:
        if spec.kind is not NodeKind.INPUT:
            continue
        if spec.input_path is not None and spec.input_path in (dev.device, *dev.by_id):
            return spec.name
        if spec.input_path is None and _usb_matches(spec, dev.vid, dev.pid, None):
            return spec.name
    return None


def _match_usb(
    dev: UsbDeviceInfo, specs: Sequence[DeviceSpec], behind: dict[str, str]
) -> str | None:
    for spec in specs:
        if spec.kind is NodeKind.USB and _usb_matches(spec, dev.vid, dev.pid, dev.serial):
            return spec.name
    # the USB device behind a matched tty or input node carries that node's config name
    return behind.get(dev.sysfs_name)


def match_devices(inventory: Inventory, specs: Iterable[DeviceSpec]) -> Inventory:
    """The same inventory with `match` set on each found device and `missing` filled in."""
    specs = list(specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"configured device names must be unique: {', '.join(dupes)}")
    serial = tuple(_replace(p, _match_serial(p, specs)) for p in inventory.serial_ports)
    inputs = tuple(_replace(d, _match_input(d, specs)) for d in inventory.input_devices)
    behind = {
        row.usb_parent: row.match for row in (*serial, *inputs) if row.usb_parent and row.match
    }
    usb = tuple(_replace(d, _match_usb(d, specs, behind)) for d in inventory.usb_devices)
    found = {row.match for row in (*serial, *inputs, *usb) if row.match}
    return Inventory(serial, usb, inputs, tuple(n for n in names if n not in found))


def _replace(row: Any, match: str | None) -> Any:
    return replace(row, match=match)


def discover(
    specs: Iterable[DeviceSpec] = (), *, sysfs: Path = SYSFS, devfs: Path = DEVFS
) -> Inventory:
    """Enumerate everything and match it against the configured devices."""
    inventory = Inventory(
        serial_ports=tuple(list_serial_ports(devfs=devfs)),
        usb_devices=tuple(list_usb_devices(sysfs=sysfs)),
        input_devices=tuple(list_input_devices(sysfs=sysfs, devfs=devfs)),
    )
    return match_devices(inventory, specs)


# rendering -------------------------------------------------------------------------------


def _ids(vid: int | None, pid: int | None) -> str:
    return "" if vid is None or pid is None else f"{vid:04x}:{pid:04x}"


def render_table(inventory: Inventory) -> str:
    """The `posbridge devices` table: one line per device, then what the config lacks."""
    rows: list[tuple[str, ...]] = [("KIND", "DEVICE", "ID", "DESCRIPTION", "CONFIG")]
    for p in inventory.serial_ports:
        desc = " ".join(x for x in (p.manufacturer, p.product) if x) or p.description or ""
        rows.append(
            (
                "serial",
                p.by_id[0] if p.by_id else p.device,
                _ids(p.vid, p.pid) + (f":{p.serial}" if p.serial else ""),
                desc,
                p.match or "-",
            )
        )
    for d in inventory.usb_devices:
        desc = " ".join(x for x in (d.manufacturer, d.product) if x)
        if d.classes:
            desc += f" [{','.join(d.classes)}]"
        rows.append(
            ("usb", f"bus {d.bus:03d} dev {d.address:03d}", d.usb_id, desc.strip(), d.match or "-")
        )
    for i in inventory.input_devices:
        desc = (i.name or "") + (" [keyboard]" if i.keyboard_like else "")
        rows.append(
            ("input", i.by_id[0] if i.by_id else i.device, _ids(i.vid, i.pid), desc, i.match or "-")
        )
    if len(rows) == 1:
        lines = ["no serial, USB or input devices found"]
    else:
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
    lines += [f"missing: {name} (configured, not found)" for name in inventory.missing]
    return "\n".join(lines) + "\n"
