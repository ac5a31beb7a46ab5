"""The one place a `[[devices]]` entry becomes its driver.

Where does the printer's serial port get opened?  Here its `SerialTransport` is built from
the entry, with every line setting the entry gives (baud, data bits, parity, stop bits,
RTS/CTS or XON/XOFF); the driver (`ReceiptPrinter`, `ScannerDevice`, `MsrDevice`, the
fiscal registrar) opens it.  The service, `doctor`, `devices`, `udev-rules`, `scan-test`
and `test-print` all come through here, so what the config says is what every one of them
opens.  Every driver writes and reads through the `drivers.transport` contract: one
serial, one USB, one TCP and one file implementation.

The drivers are imported inside the builders, one kind at a time: each pulls a library
(biip for scans, python-escpos's capability database for printers, pyusb/libusb,
python-evdev, pyudev) that a command touching one kind of device must not pay for all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.config import (
    DeviceSettings,
    FileDevice,
    HidDevice,
    SerialDevice,
    TcpDevice,
    UsbDevice,
)
from bridge.supported_devices import unsupported_problem
from drivers.transport.base import Transport
from drivers.transport.file import FileTransport
from drivers.transport.serial import SerialSettings, SerialTransport
from drivers.transport.tcp import TcpTransport

if TYPE_CHECKING:
    from drivers.device import Device
    from drivers.discovery import DeviceSpec
    from drivers.fiscal.base import FiscalPrinter
    from drivers.hotplug import DeviceMatch
    from drivers.msr.wedge import WedgeCardReader
    from drivers.printer.escpos_printer import ReceiptPrinter
    from drivers.printer.profile import PrinterConfig
    from drivers.scanner.wedge import WedgeScanner
    from drivers.transport.usb import UsbId
    from drivers.wedge_reader import EvdevWedge


class DeviceBuildError(ValueError):
    """A `[[devices]]` entry cannot become a driver; one line naming the device and why."""


# ---------------------------------------------------------------------- transports


def serial_settings(s: SerialDevice) -> SerialSettings:
    return SerialSettings(
        baudrate=s.baudrate,
        bytesize=s.bytesize,
        parity=s.parity,
        stopbits=s.stopbits,
        rtscts=s.flow == "rtscts",
        xonxoff=s.flow == "xonxoff",
    )


def usb_id(s: UsbDevice) -> UsbId:
    from drivers.transport.usb import UsbId  # pyusb: see the module docstring

    try:
        return UsbId.parse(s.usb)
    except ValueError as exc:
        raise DeviceBuildError(f"device {s.name}: {exc}") from None


def transport(s: DeviceSettings) -> Transport:
    """A new, unopened transport for the entry, carrying every setting it configures."""
    if isinstance(s, SerialDevice):
        return SerialTransport(s.port, serial_settings(s))
    if isinstance(s, TcpDevice):
        return TcpTransport(s.host, s.tcp_port)
    if isinstance(s, FileDevice):
        # a printer's device node (/dev/usb/lp0) is written only; a reader's is read
        return FileTransport(s.port, readable=s.kind != "printer")
    if isinstance(s, UsbDevice):
        from drivers.transport.usb import UsbTransport  # pyusb: see the module docstring

        return UsbTransport(usb_id(s))
    from drivers.transport.evdev_input import EvdevInputTransport  # python-evdev

    return EvdevInputTransport(s.port)


def transport_factory(s: DeviceSettings) -> Callable[[], Transport]:
    """What a reading driver calls to (re)open its port: a fresh transport each time."""
    return functools.partial(transport, s)


# ---------------------------------------------------------------------- drivers


def _check_pair(s: DeviceSettings) -> None:
    # the config refuses these already; a caller handing in a hand-made entry gets the same line
    if problem := unsupported_problem(s.kind, s.connection):
        raise DeviceBuildError(f"device {s.name}: {problem}")


@dataclass(frozen=True)
class Driver:
    """An entry's driver; for `hid`, also what reads the evdev node into it (start and
    stop `feeder` beside the device: the decoder itself has no port)."""

    device: Device
    feeder: EvdevWedge | None = None


def build_driver(s: DeviceSettings) -> Driver:
    """The driver for one entry, nothing opened or started yet."""
    if isinstance(s, HidDevice):
        _check_pair(s)
        wedge = build_wedge(s)
        from drivers.wedge_reader import EvdevWedge  # python-evdev

        return Driver(wedge, EvdevWedge(wedge, s.port))
    return Driver(build_device(s))


def build_device(s: DeviceSettings) -> Device:
    """The driver for one entry, nothing opened yet (a `hid` decoder needs `build_driver`'s
    feeder to see any key)."""
    _check_pair(s)
    if s.kind == "printer":
        return build_printer(s)
    if s.kind == "registrar":
        return build_registrar(s)
    if isinstance(s, HidDevice):
        return build_wedge(s)
    from drivers.scanner.framing import suffix_from_name

    if s.kind == "scanner":
        from drivers.scanner.device import ScannerConfig, ScannerDevice
        from drivers.scanner.scan import ScanOptions

        options = ScanOptions(prefix=s.prefix.encode("latin-1"))
        config = ScannerConfig(suffix=suffix_from_name(s.suffix), scan=options)
        return ScannerDevice(s.name, transport_factory(s), config)
    from drivers.msr.device import MsrConfig, MsrDevice

    return MsrDevice(s.name, transport_factory(s), MsrConfig(suffix=suffix_from_name(s.suffix)))


def build_wedge(s: HidDevice) -> WedgeScanner | WedgeCardReader:
    """A keyboard-wedge decoder: key events in, scans or swipes out."""
    if s.kind == "scanner":
        from drivers.scanner.scan import ScanOptions
        from drivers.scanner.wedge import WedgeScanner

        options = ScanOptions(prefix=s.prefix.encode("latin-1"), repair_layout=True)
        return WedgeScanner(s.name, options=options)
    from drivers.msr.device import MsrConfig
    from drivers.msr.wedge import WedgeCardReader

    return WedgeCardReader(s.name, MsrConfig())


def printer_config(s: DeviceSettings) -> PrinterConfig:
    from pydantic import ValidationError

    from drivers.printer.profile import PrinterConfig

    try:
        return PrinterConfig(
            profile=s.profile or "default",
            paper_width_mm=s.paper_mm,
            code_page=s.codepage,
            code_page_slot=s.codepage_slot,
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise DeviceBuildError(f"printer {s.name}: {reasons}") from None


def build_printer(s: DeviceSettings) -> ReceiptPrinter:
    _check_pair(s)
    from drivers.printer.escpos_printer import ReceiptPrinter
    from drivers.printer.profile import ProfileError

    config = printer_config(s)
    try:
        return ReceiptPrinter(s.name, transport(s), config)
    except ProfileError as exc:
        raise DeviceBuildError(f"printer {s.name}: {exc}") from None


def build_registrar(s: DeviceSettings) -> FiscalPrinter:
    """The fiscal registrar (Shtrih-M protocol) on the entry's serial or TCP transport."""
    _check_pair(s)
    # imported here: only registers with a registrar load the fiscal driver
    from drivers.fiscal.shtrih import ShtrihFiscalPrinter

    return ShtrihFiscalPrinter(s.name, transport(s), password=s.operator_password())


# ---------------------------------------------------------------------- finding it


def hotplug_match(s: DeviceSettings) -> DeviceMatch | None:
    """What udev reports when this device is plugged in; None where udev cannot tell."""
    from drivers.hotplug import DeviceMatch  # pyudev

    if isinstance(s, SerialDevice) and s.port.startswith("/dev/"):
        return DeviceMatch("tty", devnode=s.port)
    if isinstance(s, HidDevice) and s.port.startswith("/dev/"):
        return DeviceMatch("input", devnode=s.port)
    if isinstance(s, UsbDevice):
        return DeviceMatch("usb", usb=usb_id(s))
    return None


def discovery_spec(s: DeviceSettings) -> DeviceSpec | None:
    """How `devices` and `udev-rules` find the entry; None for TCP, files and URLs."""
    from drivers.discovery import DeviceSpec, NodeKind

    if isinstance(s, SerialDevice) and "://" not in s.port:
        return DeviceSpec(s.name, NodeKind.SERIAL, port=s.port, usb=s.usb)
    if isinstance(s, UsbDevice):
        return DeviceSpec(s.name, NodeKind.USB, usb=s.usb)
    if isinstance(s, HidDevice):
        return DeviceSpec(s.name, NodeKind.INPUT, input_path=s.port, usb=s.usb)
    return None


def by_id(s: DeviceSettings) -> str | None:
    """The device's own path that `udev-rules` matches, when the entry gives one."""
    return s.by_id if isinstance(s, SerialDevice | HidDevice) else None


def address(s: DeviceSettings) -> str:
    """Where the entry points, for messages: "tcp 192.0.2.10:9100", "serial /dev/ttyS0 ..."."""
    if isinstance(s, TcpDevice):
        return f"tcp {s.host}:{s.tcp_port}"
    if isinstance(s, UsbDevice):
        return f"usb {s.usb}"
    if isinstance(s, SerialDevice):
        return f"serial {s.port} at {serial_settings(s).short}"
    return f"{s.connection} {s.port}"
