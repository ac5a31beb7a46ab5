"""The `[[passthrough]]` entries, running inside the service: a virtual port, the real device
behind it, and the relay between them, all sharing one `PassthroughSession`.

A device a relay stands in front of is the relay's alone: the `DeviceManager` and the
fiscal service leave it closed (two readers of one serial port would each get half of
every frame).  A relay whose device is off at start is retried in the background; the
virtual port exists from the start, so the POS finds its port where it expects it.
"""

from __future__ import annotations

import grp
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from bridge.catalog.policy import default_state_path
from bridge.config import Config, PassthroughSettings
from bridge.devices import build
from bridge.passthrough.matching import CatalogIndex
from bridge.passthrough.session import PassthroughSession, stats_path
from drivers.masking import mask_text
from drivers.transport.base import Transport
from drivers.virtual_port import PtyPort, TcpListenPort

if TYPE_CHECKING:
    from bridge.service.register import Register

log = logging.getLogger("posbridge.passthrough")

RETRY_SECONDS = 5.0


class Relay(Protocol):
    """What the manager asks of every relay (registrar, printer, scanner)."""

    def start(self) -> object: ...

    def stop(self) -> None: ...

    @property
    def counters(self) -> dict[str, int]: ...


def owned_devices(config: Config) -> set[str]:
    """The [[devices]] entries a pass-through relay owns: nothing else may open them."""
    return {p.device for p in config.passthrough}


class PassthroughManager:
    def __init__(self, register: Register) -> None:
        config = register.config
        self.config = config
        catalog = next((p.catalog for p in config.passthrough if p.catalog is not None), None)
        self.session = PassthroughSession(
            register,
            catalog=CatalogIndex(catalog, default_state_path(config.journal.path)),
            stats_path=stats_path(config),
        )
        self.relays: dict[str, Relay] = {}
        self.ports: dict[str, Transport] = {}
        self.errors: dict[str, str] = {}
        self._waiting: list[PassthroughSettings] = []
        self._stop = threading.Event()
        self._retry: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stop.clear()
        self.session.catalog.load()
        for entry in self.config.passthrough:
            if not self._start_one(entry):
                self._waiting.append(entry)
        if self._waiting:
            self._retry = threading.Thread(
                target=self._retry_loop, name="posbridge-passthrough-retry", daemon=True
            )
            self._retry.start()

    def stop(self) -> None:
        self._stop.set()
        if self._retry is not None:
            self._retry.join(timeout=RETRY_SECONDS + 1)
            self._retry = None
        with self._lock:
            relays, self.relays = dict(self.relays), {}
            ports, self.ports = dict(self.ports), {}
        for name, relay in relays.items():
            try:
                relay.stop()
            except Exception:
                log.exception("pass-through %s did not stop cleanly", name)
        for port in ports.values():
            port.close()  # the relay closed it already, or never got to: removes the link

    def _retry_loop(self) -> None:
        while self._waiting and not self._stop.wait(RETRY_SECONDS):
            self._waiting = [e for e in self._waiting if not self._start_one(e)]

    def _start_one(self, entry: PassthroughSettings) -> bool:
        try:
            with self._lock:
                port = self.ports.get(entry.name) or self._port(entry)
                self.ports[entry.name] = port
            relay = self._relay(entry, port)
            relay.start()
        except Exception as exc:  # the rest of the register works; the POS's port waits
            self.errors[entry.name] = mask_text(str(exc)) or type(exc).__name__
            log.warning(
                "pass-through %s (%s in front of %s) not running yet: %s",
                entry.name,
                entry.kind,
                entry.device,
                self.errors[entry.name],
            )
            return False
        with self._lock:
            self.relays[entry.name] = relay
        self.errors.pop(entry.name, None)
        log.info("pass-through %s: %s in front of device %s", entry.name, entry.kind, entry.device)
        return True

    def _port(self, entry: PassthroughSettings) -> Transport:
        name = f"passthrough {entry.name}"
        address = entry.listen_address()
        if address is not None:
            return TcpListenPort(address[0], address[1], name)
        group = None
        if entry.pty_group is not None:
            group = grp.getgrnam(entry.pty_group).gr_gid
        port = PtyPort(entry.link_path(), name, mode=entry.pty_mode)
        if group is not None:
            os.chown(port.slave_path, -1, group)
        return port

    def _relay(self, entry: PassthroughSettings, port: Transport) -> Relay:
        """The relay of the entry's kind; each imported only when configured."""
        device = self.config.device(entry.device)
        if entry.kind == "registrar":
            # lazy: each relay (and the libraries it reads its device with) loads only
            # when a pass-through of its kind is configured
            from bridge.passthrough.registrar import RegistrarRelay

            return RegistrarRelay(
                port,
                build.transport(device),
                self.session,
                name=entry.name,
                settle_budget=entry.settle_budget,
                admin_password=device.operator_password(),
            )
        if entry.kind == "printer":
            # lazy: as above (the printer's code pages and profiles)
            from bridge.passthrough.printer import PrinterRelay
            from bridge.receipts.render import render_target

            columns = self.config.receipt.columns
            return PrinterRelay(
                port,
                build.transport(device),
                self.session,
                window=entry.window,
                width=columns,
                target=render_target(columns, device),
                name=entry.name,
            )
        # lazy: as above (barcode classification)
        from bridge.passthrough.scanner import ScannerRelay
        from drivers.scanner.framing import suffix_from_name

        return ScannerRelay(
            port,
            build.transport_factory(device),
            self.session,
            suffix=suffix_from_name(device.suffix),
            prefix=device.prefix.encode(),
            pass_cards=entry.pass_cards,
            barcodes=self.config.barcodes,
            name=entry.name,
        )

    # ------------------------------------------------------------------ views

    def counters(self) -> dict[str, dict[str, int]]:
        """Each running relay's counters, by pass-through name."""
        with self._lock:
            relays = dict(self.relays)
        out = {}
        for name, relay in relays.items():
            out[name] = _counters(relay)
        return out

    def summary(self) -> dict[str, Any]:
        """What /v1/status shows: each relay, the sales settled on the way, and the items
        that matched nothing in the catalogue (their names; no card numbers)."""
        return {
            "relays": self.status(),
            "sales": self.session.figures(),
            "pendingCard": self.session.pending_card(),
        }

    def status(self) -> list[dict[str, Any]]:
        out = []
        counters = self.counters()
        for entry in self.config.passthrough:
            port = self.ports.get(entry.name)
            out.append(
                {
                    "name": entry.name,
                    "kind": entry.kind,
                    "device": entry.device,
                    "port": _where(entry, port),
                    "running": entry.name in counters,
                    "error": self.errors.get(entry.name),
                    "counters": counters.get(entry.name, {}),
                }
            )
        return out


def _counters(relay: Relay) -> dict[str, int]:
    return {str(k): int(v) for k, v in relay.counters.items()}


def _where(entry: PassthroughSettings, port: Transport | None) -> str:
    if entry.listen is not None:
        bound = getattr(port, "bound_port", None)
        host = entry.listen.rsplit(":", 1)[0]
        return f"tcp {host}:{bound}" if bound else f"tcp {entry.listen}"
    slave = getattr(port, "slave_path", None)
    return f"pty {entry.link_path()}" + (f" -> {slave}" if slave else "")
