"""The configured peripherals, opened for the service and turned into register events.

Scans are classified (`bridge.barcodes`) before anyone sees them; a loyalty card scan
or a card swipe is attached to the cheque being rung up.  A device that is missing
at start is not fatal: its reader keeps retrying with backoff and the rest of the
register works meanwhile.  Card numbers are masked in every event and log line.
Each `[[devices]]` entry becomes its driver in `bridge.devices.build`, nowhere else.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from bridge.barcodes import UnusableInput, classify
from bridge.config import Config
from bridge.devices import build
from bridge.loyalty.protocol import mask_card
from bridge.service.cheque import ChequeError
from drivers.device import DataEvent, Device, ErrorEvent, Event, Flag, StatusEvent
from drivers.masking import mask_text
from drivers.msr.tracks import CardSwipe
from drivers.printer.escpos_printer import ReceiptPrinter
from drivers.printer.queue import PrintQueue
from drivers.scanner.scan import ScanEvent

if TYPE_CHECKING:
    from bridge.service.events import EventBus
    from drivers.hotplug import DeviceMatch, HotplugEvent, HotplugMonitor
    from drivers.printer.document import Receipt
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
        relayed = {p.device for p in config.passthrough}
        for settings in config.devices:
            if settings.kind == "registrar":
                continue  # the fiscal service (bridge.fiscal) owns it, opened on the first print
            if settings.name in relayed:
                continue  # a pass-through relay owns it (bridge.passthrough.manager)
            driver = build.build_driver(settings)
            device = driver.device
            device.add_listener(self._on_event)
            if driver.feeder is not None:
                self.wedges[settings.name] = driver.feeder
            self.devices[settings.name] = device
            self.kinds[settings.name] = settings.kind
            if isinstance(device, ReceiptPrinter):
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
        matches: dict[str, DeviceMatch] = {}
        for d in self.config.devices:
            if d.name in self.devices and (match := build.hotplug_match(d)) is not None:
                matches[d.name] = match
        if not matches:
            return
        from drivers.hotplug import HotplugMonitor  # pyudev, only where a device can be plugged

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
