"""The configured peripherals, opened for the service and turned into register events.

Scans are classified (`bridge.barcodes`) before anyone sees them; a loyalty card scan
or a card swipe is attached to the cheque being rung up.  A device that is missing
at start is not fatal: its reader keeps retrying with backoff and the rest of the
register works meanwhile.  Card numbers are masked in every event and log line.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from bridge.barcodes import UnusableInput, classify
from bridge.config import Config, DeviceSettings
from bridge.loyalty.protocol import mask_card
from drivers.device import DataEvent, Device, ErrorEvent, Event, Flag, StatusEvent
from drivers.masking import mask_text
from drivers.transport.base import Transport

if TYPE_CHECKING:
    from bridge.service.events import EventBus
    from drivers.hotplug import HotplugEvent, HotplugMonitor
    from drivers.printer.document import Receipt
    from drivers.printer.queue import PrintQueue
    from drivers.wedge_reader import EvdevWedge

log = logging.getLogger("posbridge.devices")


class DeviceManager:
    def __init__(
        self, config: Config, events: EventBus, on_card: Callable[[str, str], object]
    ) -> None:
        """`events` gets what the devices report; `on_card(number, device)` a card swiped
        or scanned, for the cheque being rung up.  Given here, not reached through the
        register: the devices need nothing else of it."""
        self.config = config
        self.events = events
        self.on_card = on_card
        self.devices: dict[str, Device] = {}
        self.kinds: dict[str, str] = {}
        self.queues: dict[str, PrintQueue] = {}
        self.wedges: dict[str, EvdevWedge] = {}
        self.hotplug: HotplugMonitor | None = None
        self.last_error: dict[str, str] = {}
        self._lock = threading.Lock()
        for settings in config.devices:
            device = build_device(settings)
            device.add_listener(self._on_event)
            if settings.connection == "hid":
                from drivers.wedge_reader import EvdevWedge

                assert settings.port is not None
                self.wedges[settings.name] = EvdevWedge(device, settings.port)  # type: ignore[arg-type]
            self.devices[settings.name] = device
            self.kinds[settings.name] = settings.kind
            if settings.kind == "printer":
                from drivers.printer.escpos_printer import ReceiptPrinter
                from drivers.printer.queue import PrintQueue

                assert isinstance(device, ReceiptPrinter)
                self.queues[settings.name] = PrintQueue(device)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for name, device in self.devices.items():
            try:
                device.open()
                device.claim()
                device.enable()
            except Exception as exc:  # a printer that is off at start: its queue retries
                self.last_error[name] = mask_text(str(exc))
                log.warning("device %s not ready at start: %s", name, exc)
        for queue in self.queues.values():
            queue.start()
        for wedge in self.wedges.values():
            wedge.start()
        self._start_hotplug()

    def _start_hotplug(self) -> None:
        """Where udev runs, reopen a device the moment it is plugged back (else: backoff)."""
        from drivers.hotplug import DeviceMatch, HotplugMonitor
        from drivers.transport.usb import UsbId

        matches: dict[str, DeviceMatch] = {}
        for d in self.config.devices:
            if d.connection == "serial" and d.port and d.port.startswith("/dev/"):
                matches[d.name] = DeviceMatch("tty", devnode=d.port)
            elif d.connection == "hid" and d.port and d.port.startswith("/dev/"):
                matches[d.name] = DeviceMatch("input", devnode=d.port)
            elif d.connection == "usb" and d.usb:
                matches[d.name] = DeviceMatch("usb", usb=UsbId.parse(d.usb))
        if not matches:
            return
        try:
            monitor = HotplugMonitor(udev=True)
            monitor.start()
        except Exception as exc:  # no udev here: the readers' backoff still reconnects
            log.info("hotplug monitor unavailable (%s); devices reconnect by polling", exc)
            return
        if not monitor.using_udev:
            monitor.stop()
            return
        for name, match in matches.items():
            monitor.watch(match, functools.partial(self._plugged, name))
        self.hotplug = monitor

    def _plugged(self, name: str, event: HotplugEvent) -> None:
        self.events.publish("device_hotplug", device=name, action=event.action)
        if event.action != "add":
            return
        device = self.devices[name]
        if name in self.wedges:
            self.wedges[name].reconnect_now()
        elif name in self.queues:
            self.queues[name].retry_now()
        else:
            reconnect = getattr(device, "reconnect_now", None)
            if reconnect is not None:
                reconnect()

    def stop(self) -> None:
        if self.hotplug is not None:
            self.hotplug.stop()
        for wedge in self.wedges.values():
            wedge.stop()
        for queue in self.queues.values():
            queue.stop()
        for name, device in self.devices.items():
            try:
                device.close()
            except Exception as exc:
                log.warning("device %s did not close cleanly: %s", name, exc)

    # ------------------------------------------------------------------ printing

    def printer_name(self) -> str:
        name = self.config.receipt.printer or next(iter(self.queues), None)
        if name is None or name not in self.queues:
            from bridge.service.cheques import ChequeError

            raise ChequeError("no_printer", "no receipt printer is configured", 409)
        return name

    def print(self, document: Receipt) -> tuple[str, str]:
        queue = self.queues[self.printer_name()]
        job_id = queue.submit(document)
        return job_id, queue.job(job_id).state.value

    # ------------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        events = self.events
        if isinstance(event, StatusEvent):
            # the event line below says it (posbridge.events): one line per change, not two
            log.debug("device %s %s %s", event.device, event.power, event.detail.get("reason", ""))
            events.publish(
                "device_status",
                device=event.device,
                power=event.power.value,
                detail={k: str(v) for k, v in event.detail.items()},
            )
        elif isinstance(event, ErrorEvent):
            self.last_error[event.device] = mask_text(event.message)
            log.warning("device %s error: %s", event.device, event.message)
            events.publish("device_error", device=event.device, message=event.message)
        elif isinstance(event, DataEvent):
            self._on_data(event)

    def _on_data(self, event: DataEvent) -> None:
        from drivers.msr.tracks import CardSwipe
        from drivers.scanner.scan import ScanEvent

        data = event.data
        if isinstance(data, ScanEvent):
            raw = (data.symbology or "") + data.text
            try:
                result = classify(raw, self.config.barcodes).to_json()
            except UnusableInput as exc:
                self.events.publish(
                    "device_error", device=event.device, message=f"unusable scan: {exc}"
                )
                return
            card = result.pop("card", None)
            if result["kind"] == "loyalty_card":
                result["text"] = mask_card(result["text"])
            log.info("scan on %s: %s", event.device, result["kind"])
            self.events.publish("scan", device=event.device, **result)
            if card:
                self.on_card(card, event.device)
        elif isinstance(data, CardSwipe):
            tracks = {str(n): data.status(n).value for n in (1, 2, 3)}
            log.info("swipe on %s: card %s", event.device, data.masked_number)
            self.events.publish(
                "swipe", device=event.device, card=data.masked_number, tracks=tracks
            )
            if data.number:
                self.on_card(data.number, event.device)

    # ------------------------------------------------------------------ views

    def status(self) -> list[dict[str, Any]]:
        out = []
        for name, device in self.devices.items():
            flags: dict[str, bool | None] = {}
            last_status = getattr(device, "last_status", None)
            if last_status is not None:
                flags = {
                    f.name: getattr(last_status, f.name).to_json()
                    for f in fields(last_status)
                    if isinstance(getattr(last_status, f.name), Flag)
                }
            out.append(
                {
                    "name": name,
                    "kind": self.kinds[name],
                    "state": device.state.value,
                    "power": device.power.value,
                    "flags": flags,
                    "lastError": self.last_error.get(name),
                }
            )
        return out


# ---------------------------------------------------------------------- construction


def build_device(s: DeviceSettings) -> Device:
    """The driver object for one `[[devices]]` entry (nothing is opened here)."""
    if s.kind == "printer":
        return _printer(s)
    if s.connection == "hid":
        return _wedge(s)
    factory = transport_factory(s)
    if s.kind == "scanner":
        from drivers.scanner.device import ScannerConfig, ScannerDevice
        from drivers.scanner.framing import suffix_from_name
        from drivers.scanner.scan import ScanOptions

        return ScannerDevice(
            s.name,
            factory,
            ScannerConfig(
                suffix=suffix_from_name(s.suffix),
                scan=ScanOptions(prefix=s.prefix.encode("latin-1")),
            ),
        )
    from drivers.msr.device import MsrConfig, MsrDevice
    from drivers.scanner.framing import suffix_from_name

    return MsrDevice(s.name, factory, MsrConfig(suffix=suffix_from_name(s.suffix)))


def _wedge(s: DeviceSettings) -> Device:
    """A keyboard-wedge decoder; DeviceManager feeds it from the evdev node."""
    from drivers.scanner.scan import ScanOptions

    if s.kind == "scanner":
        from drivers.scanner.wedge import WedgeScanner

        return WedgeScanner(
            s.name, options=ScanOptions(prefix=s.prefix.encode("latin-1"), repair_layout=True)
        )
    from drivers.msr.device import MsrConfig
    from drivers.msr.wedge import WedgeCardReader

    return WedgeCardReader(s.name, MsrConfig())


def transport_factory(s: DeviceSettings) -> Any:
    def make() -> Transport:
        if s.connection == "serial":
            from drivers.transport.serial import SerialSettings, SerialTransport

            assert s.port is not None
            return SerialTransport(
                s.port,
                SerialSettings(
                    baudrate=s.baudrate,
                    bytesize=s.bytesize,
                    parity=s.parity,
                    stopbits=s.stopbits,
                    rtscts=s.flow == "rtscts",
                    xonxoff=s.flow == "xonxoff",
                ),
            )
        if s.connection == "tcp":
            from drivers.transport.tcp import TcpTransport

            assert s.host is not None
            return TcpTransport(s.host, s.tcp_port)
        if s.connection == "file":
            from drivers.transport.file import FileTransport

            assert s.port is not None
            return FileTransport(s.port, readable=True)
        raise ValueError(f"device {s.name}: {s.connection} input is not supported yet")

    return make


def _printer(s: DeviceSettings) -> Device:
    from drivers.printer import connections
    from drivers.printer.escpos_printer import ReceiptPrinter
    from drivers.printer.profile import PrinterConfig

    transport: Transport
    if s.connection == "serial":
        assert s.port is not None
        transport = connections.SerialConnection(s.port, s.baudrate)
    elif s.connection == "tcp":
        assert s.host is not None
        transport = connections.NetworkConnection(s.host, s.tcp_port)
    elif s.connection == "usb":
        assert s.usb is not None
        vid, pid = (int(x, 16) for x in s.usb.split(":")[:2])
        transport = connections.UsbConnection(vid, pid)
    elif s.connection == "file":
        assert s.port is not None
        transport = connections.FileConnection(s.port)
    else:
        raise ValueError(f"printer {s.name}: connection {s.connection} is not a printer port")
    config = PrinterConfig(
        profile=s.profile or "default",
        paper_width_mm=s.paper_mm,
        code_page=s.codepage,
        code_page_slot=s.codepage_slot,
    )
    return ReceiptPrinter(s.name, transport, config)
