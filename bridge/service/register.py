"""Everything one register runs, wired together: loyalty, cheques, devices, events.

The API and the devices both talk to this object; it owns start and stop order, so a
SIGTERM releases devices and leaves the journal consistent.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bridge import __version__
from bridge.config import Config
from bridge.fiscal.service import FiscalService
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import JournalError
from bridge.loyalty.offline import Connectivity
from bridge.metrics import Metrics
from bridge.receipts.cheque_block import loyalty_document, loyalty_receipt
from bridge.runtime import offline_client
from bridge.service.cheque import ChequeError, Line, RegisterCheque
from bridge.service.cheque_store import ChequeStore
from bridge.service.cheques import ChequeBook
from bridge.service.events import EventBus

if TYPE_CHECKING:
    from bridge.passthrough.manager import PassthroughManager
    from bridge.service.devices import DeviceManager

log = logging.getLogger("posbridge.service")
STOP_TIMEOUT = 3.0  # seconds each loyalty thread gets to end once its request is cut short
# threads for the API's local work (cheque file, receipts, status, a fiscal print): made as
# requests overlap, so one at a time in a quiet shop; enough that prints waiting for the
# registrar leave room for a status
LOCAL_THREADS = 8


class Register:
    # the type of a cheque's lines, for the pass-through to build its cheques with: it stands
    # on the service and reaches it through this object, never by importing it
    cheque_line = Line

    def __init__(
        self, config: Config, *, client: LoyaltyClient | None = None, devices: bool = True
    ) -> None:
        """Every part gets its listeners when it is built.  A `client` passed in (tests
        with a fault transport) brings its own metrics observer."""
        self.config = config
        self.events = EventBus()
        self.metrics = Metrics()
        self.offline = offline_client(
            config,
            client,
            observer=self.metrics.observe,
            on_change=self._connectivity,
            on_warning=self._journal_warning,
        )
        c = config.cheques
        self.book = ChequeBook(
            self.offline,
            ChequeStore(config.cheques_path()),
            max_open=c.max_open,
            expire_seconds=c.expire_hours * 3600,
            retention_seconds=c.keep_closed_days * 86400,
        )
        self.book.on_expired = lambda cheque: self.publish_cheque("cheque_expired", cheque)
        self.fiscal = FiscalService(config)  # the registrar, opened on the first print
        # the POS API's local work, off its event loop (bridge.api.routes.deps.locally)
        self.local_work = ThreadPoolExecutor(LOCAL_THREADS, thread_name_prefix="posbridge-local")
        self.started = time.monotonic()
        self.devices: DeviceManager | None = None
        if devices:
            # lazy: a register without devices (tests, benchmarks) never loads the hardware
            # libraries behind the drivers (pyserial, pyusb, evdev, pyudev)
            from bridge.service.devices import DeviceManager

            self.devices = DeviceManager(config, self.events, on_card=self.card_presented)
        self.passthrough: PassthroughManager | None = None
        if devices and config.passthrough:
            # lazy, like the devices: only a register with [[passthrough]] entries loads it
            from bridge.passthrough.manager import PassthroughManager

            self.passthrough = PassthroughManager(self)
        self.metrics.watch(self)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.offline.start()
        self.book.start()
        if self.devices is not None:
            self.devices.start()
        if self.passthrough is not None:
            self.passthrough.start()
        log.info(
            "register started: %d device(s), processing %s",
            len(self.config.devices),
            self.offline.state,
        )

    def stop(self) -> None:
        # first free the sender thread: a request stuck at processing is cut short (a
        # must-reach step stays in the journal and is resent after the restart)
        self.offline.client.stop_sending()
        if self.passthrough is not None:  # a settle cut short: its close goes on unaltered
            self.passthrough.stop()
        self.local_work.shutdown(wait=True, cancel_futures=True)  # before the files close
        self.book.stop(timeout=STOP_TIMEOUT)
        if self.devices is not None:
            self.devices.stop()
        self.offline.stop(timeout=STOP_TIMEOUT)
        self.offline.client.close(timeout=STOP_TIMEOUT)
        self.offline.journal.close()
        self.fiscal.close()
        self.book.store.close()
        log.info("register stopped")

    # ------------------------------------------------------------------ events

    def _journal_warning(self, text: str) -> None:
        self.events.publish("journal_warning", text=text)

    def _connectivity(self, state: Connectivity) -> None:
        self.events.publish("connectivity", state=state.value)

    def publish_cheque(self, kind: str, cheque: RegisterCheque) -> None:
        if kind == "cheque_confirmed" and self.passthrough is not None:
            self.passthrough.session.cheque_confirmed(cheque)  # for the printer relay
        self.events.publish(
            kind,
            chequeId=cheque.id,
            number=cheque.number,
            card=cheque.masked_card,
            state=cheque.state,
        )

    def card_presented(self, card: str, source: str) -> RegisterCheque | None:
        """A swipe or a loyalty scan: attach it to the cheque being rung up (and to the
        receipt a pass-through POS is ringing up)."""
        if self.passthrough is not None:
            self.passthrough.session.card_presented(card, source)
        try:
            cheque = self.book.attach_card(card)
        except ChequeError as exc:
            self.events.publish("card_rejected", source=source, reason=str(exc))
            return None
        if cheque is not None:
            self.publish_cheque("card_attached", cheque)
        return cheque

    # ------------------------------------------------------------------ views

    def status(self) -> dict[str, Any]:
        journal = self.offline.journal_health()  # a degraded journal is re-probed here
        try:
            counts = self.offline.journal.counts()
        except JournalError:  # unreadable (damaged while running): the state says why
            counts = None
        age = None if counts is None else counts.oldest_pending_age()
        if counts is not None:
            journal.update(
                {
                    "pending": counts.pending,
                    "rejected": counts.rejected,
                    "done": counts.done,
                    "oldestPendingSeconds": None if age is None else round(age, 1),
                }
            )
        problems = []
        if journal["degraded"]:
            problems.append(f"journal unavailable: {journal['error']}")
        if journal["alarm"]:
            problems.append(
                f"journal was damaged: {journal['alarm'].get('problem')}; moved to"
                f" {journal['alarm'].get('movedTo')}; salvage it, then acknowledge"
            )
        return {
            "version": __version__,
            "registerId": self.config.processing.register_id,
            "health": "degraded" if problems else "ok",
            "problems": problems,
            "connectivity": self.offline.state.value,
            "journal": journal,
            "cheques": self.book.summary(),
            "devices": [] if self.devices is None else self.devices.status(),
            "passthrough": None if self.passthrough is None else self.passthrough.summary(),
            "uptimeSeconds": round(time.monotonic() - self.started, 1),
        }

    # ------------------------------------------------------------------ receipts

    def loyalty_receipt(self, cheque: RegisterCheque) -> tuple[list[str], bytes]:
        return loyalty_receipt(cheque, self.config)

    def print_loyalty_receipt(self, cheque: RegisterCheque) -> tuple[str, str]:
        if self.devices is None:
            raise ChequeError("no_printer", "no receipt printer is configured", 409)
        return self.devices.print(loyalty_document(cheque, self.config))
