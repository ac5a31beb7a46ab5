"""The register's side of pass-through: cards and scans in, a settled receipt's lines out.

The relays see an unmodified POS's traffic; this is where that traffic meets loyalty.
A card captured by the scanner relay (or our own card reader) waits here for the receipt
being rung up; at the receipt's close the registrar relay asks `settle` for the lines to
print inside it.  Settling is an ordinary cheque of the register's `ChequeBook` (open,
lines, card, calculate, confirm), run in the register's turn like every other request,
so offline it goes through the journal as usual and the lines are the offline notice.

Accrual only: the POS has fixed the totals on paper before we hear of the receipt, so a
discount or a redemption could not be honoured.  `settle` never raises and never waits
past its deadline: the close the POS is waiting for must reach the registrar in time.  A
settle that outlives its deadline is not abandoned: the purchase completes (or is
journaled) in the background and only its lines are not printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.fiscal.sale import loyalty_lines
from bridge.loyalty.errors import LoyaltyError
from bridge.loyalty.protocol import mask_card
from bridge.passthrough.matching import CatalogIndex, Match, name_key, unmatched_id
from drivers.masking import mask_text

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.service.cheque import Line, RegisterCheque
    from bridge.service.register import Register

    MakeLine = Callable[[str, str, Decimal, Decimal, Decimal, str | None], Line]

log = logging.getLogger("posbridge.passthrough.session")

CENT = Decimal("0.01")
QUANTITY = Decimal("0.001")  # the contract's quantity places (Shtrih-M sends six)
NAME_MAX = 256
CARD_TTL = 15 * 60.0  # a card presented and never used belongs to nobody's receipt after this
RECENT_KEPT = 20  # API-confirmed cheques waiting for the printer relay
UNMATCHED_KEPT = 10  # names shown by `doctor`
STATS_NAME = "passthrough-stats.json"


@dataclass(frozen=True)
class SoldItem:
    """What the POS sold, as seen in 0x80 / 0xFF46 frames."""

    name: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    barcode: str | None = None


@dataclass(frozen=True)
class Settled:
    """The outcome of settling a receipt: lines to print ([] = nothing) and why.

    `purchase` is the cheque confirmed for it, or still being confirmed past the
    deadline: what `PassthroughSession.void` returns if the POS cancels the receipt."""

    lines: list[str]
    reason: str  # "online" | "offline" | "no_card" | "failed: <what>"
    purchase: Future[RegisterCheque] | None = field(default=None, compare=False, repr=False)


@dataclass
class PassthroughCounts:
    """What metrics and `doctor` show of pass-through settling."""

    settled_online: int = 0
    settled_offline: int = 0
    no_card: int = 0
    failed: int = 0
    late: int = 0  # settles that missed their deadline (completed or journaled afterwards)
    items: int = 0
    unmatched: int = 0
    blocks_handed: int = 0  # loyalty blocks given to the printer relay
    voided: int = 0  # receipts cancelled at the registrar after settling: purchase refunded
    void_failed: int = 0  # ... whose refund failed (the log says which cheque)
    last_unmatched: deque[str] = field(default_factory=lambda: deque(maxlen=UNMATCHED_KEPT))

    def as_dict(self) -> dict[str, Any]:
        return {
            "settledOnline": self.settled_online,
            "settledOffline": self.settled_offline,
            "noCard": self.no_card,
            "failed": self.failed,
            "late": self.late,
            "items": self.items,
            "unmatched": self.unmatched,
            "blocksHanded": self.blocks_handed,
            "voided": self.voided,
            "voidFailed": self.void_failed,
            "lastUnmatched": list(self.last_unmatched),
        }


@dataclass
class _Recent:
    cheque: RegisterCheque
    at: float


def stats_path(config: Config) -> Path:
    """Where the service leaves pass-through figures for `posbridge doctor`."""
    return config.journal.path.with_name(STATS_NAME)


class PassthroughSession:
    """One per register; thread-safe.  `stats_path` (a JSON file) is what `doctor` reads.

    Cheque lines are built with the register's own line type (`Register.cheque_line`, or
    `make_line`): the pass-through package stands on the service and never imports it.
    """

    def __init__(
        self,
        register: Register,
        *,
        make_line: MakeLine | None = None,
        catalog: CatalogIndex | None = None,
        stats_path: Path | None = None,
        card_ttl: float = CARD_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.register = register
        self.make_line: MakeLine = make_line or register.cheque_line
        self.catalog = catalog or CatalogIndex(None)
        self.stats_path = stats_path
        self.card_ttl = card_ttl
        self.clock = clock
        self.counts = PassthroughCounts()
        self._lock = threading.Lock()
        self._card: tuple[str, float] | None = None
        self._scans: list[str] = []  # product scans of the receipt being rung up
        self._last_scan: str | None = None  # not yet claimed by an item
        self._recent: deque[_Recent] = deque(maxlen=RECENT_KEPT)
        self._own: deque[str] = deque(maxlen=RECENT_KEPT)  # settled here: printed already

    # ------------------------------------------------------------------ what the relays see

    def card_presented(self, number: str, source: str) -> None:
        card = "".join(number.split())
        if not card:
            return
        with self._lock:
            self._card = (card, self.clock())
        log.info("pass-through: card %s from %s waits for the receipt", mask_card(card), source)

    def barcode_scanned(self, code: str) -> None:
        code = code.strip()
        if not code:
            return
        with self._lock:
            self._scans.append(code)
            del self._scans[:-500]  # a receipt's worth; a POS that never closes grows nothing
            self._last_scan = code

    def barcode_for_item(self) -> str | None:
        """The product scan just before an item frame, claimed by that item (else None)."""
        with self._lock:
            code, self._last_scan = self._last_scan, None
        return code

    def take_card(self) -> str | None:
        with self._lock:
            held, self._card = self._card, None
        if held is None:
            return None
        card, at = held
        if self.clock() - at > self.card_ttl:
            log.info("pass-through: card %s was presented too long ago; ignored", mask_card(card))
            return None
        return card

    def receipt_opened(self) -> None:
        with self._lock:
            self._scans.clear()
            self._last_scan = None

    def pending_card(self) -> str | None:
        """The masked card waiting for a receipt (for status views), if any."""
        with self._lock:
            return None if self._card is None else mask_card(self._card[0])

    # ------------------------------------------------------------------ settling

    def settle(
        self, card: str, items: Sequence[SoldItem], *, width: int, deadline: float
    ) -> Settled:
        started = time.monotonic()
        try:
            if not card:
                with self._lock:
                    self.counts.no_card += 1
                return Settled([], "no_card")
            lines = self.lines_for(items)
            if not lines:
                return self._failed("no item of the receipt can be sent to processing")
            budget = deadline - time.monotonic()
            if budget <= 0:
                return self._failed("no time left before the POS's deadline")
            turn = self.register.offline.client.exclusive()
            future = turn.submit(lambda: self._settle_in_turn(card, lines))
            try:
                cheque = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                future.add_done_callback(lambda _: self._late())
                failed = self._failed(
                    f"processing did not settle within {deadline - started:.1f}s"
                    " (the purchase completes in the background)"
                )
                return Settled(failed.lines, failed.reason, future)
            printed = self._render(cheque, width)
            offline = cheque.queued  # what the block says: accrual waits in the journal
            with self._lock:
                if offline:
                    self.counts.settled_offline += 1
                else:
                    self.counts.settled_online += 1
            self._save_stats()
            return Settled(printed, "offline" if offline else "online", future)
        except LoyaltyError as exc:  # processing refused (an unknown card...): said, not traced
            return self._failed(mask_text(str(exc)) or type(exc).__name__)
        except Exception as exc:  # fail open: the close goes to the registrar regardless
            log.exception("pass-through settle failed")
            return self._failed(mask_text(str(exc)) or type(exc).__name__)

    def lines_for(self, items: Sequence[SoldItem]) -> list[Line]:
        """The cheque's lines, matched to the pushed catalogue; counts the unmatched."""
        self.catalog.refresh()
        with self._lock:
            scans = list(self._scans)
        out: list[Line] = []
        unmatched: list[str] = []
        for item in items:
            line = _line(item)
            if line is None:
                log.warning("pass-through: item %r cannot be sent (quantity or sum)", item.name)
                continue
            name, quantity, price, amount = line
            match = self.match(item, scans)
            if not match.matched:
                unmatched.append(name)
            out.append(self.make_line(match.goods_id, name, price, quantity, amount, match.barcode))
        with self._lock:
            self.counts.items += len(out)
            self.counts.unmatched += len(unmatched)
            self.counts.last_unmatched.extend(unmatched)
        if unmatched:
            log.warning(
                "pass-through: %d of %d item(s) not in the pushed catalogue: %s",
                len(unmatched),
                len(out),
                ", ".join(repr(n) for n in unmatched[:5]),
            )
        return out

    def match(self, item: SoldItem, scans: list[str]) -> Match:
        """By the item's barcode; else a scan of this receipt whose product bears the item's
        name (claimed from `scans`); else by name; else a made-up id (see `matching`)."""
        index = self.catalog
        if item.barcode:
            found = index.by_barcode(item.barcode)
            if found is not None:
                return Match(found, "barcode", item.barcode)
        key = name_key(item.name)
        for i, code in enumerate(scans):
            scanned = index.name_of_barcode(code)
            if scanned is not None and (scanned == key or scanned.startswith(key)):
                goods = index.by_barcode(code)
                if goods is not None:
                    del scans[i]
                    return Match(goods, "scan", code)
        named = index.by_name(item.name)
        if named is not None:
            return Match(named[0], named[1], item.barcode)
        return Match(unmatched_id(item.name), "unmatched", item.barcode)

    def _settle_in_turn(self, card: str, lines: list[Line]) -> RegisterCheque:
        """Runs on the register's sender thread; between its requests other calls may take the
        turn while it does local work, but it gets the turn back ahead of later ones."""
        book = self.register.book
        cheque = book.open(card=card, lines=lines)
        try:
            book.calculate(cheque)
            book.confirm(cheque)
        except BaseException:
            if cheque.is_open:  # give back whatever the purchase may hold; expiry would too
                with contextlib.suppress(Exception):
                    book.cancel(cheque)
            raise
        with self._lock:
            self._own.append(cheque.id)
        self.register.publish_cheque("cheque_confirmed", cheque)
        return cheque

    def _render(self, cheque: RegisterCheque, width: int) -> list[str]:
        return loyalty_lines(cheque, self.register.config.receipt.language, max(16, width))

    def _failed(self, what: str) -> Settled:
        with self._lock:
            self.counts.failed += 1
        log.warning("pass-through: receipt left without loyalty lines: %s", what)
        self._save_stats()
        return Settled([], f"failed: {what}")

    def _late(self) -> None:
        with self._lock:
            self.counts.late += 1
        self._save_stats()

    def void(self, settled: Settled) -> None:
        """The POS cancelled the receipt (its close was refused, then 0x88): no sale took
        place, so the purchase settled for it is refunded at processing, whole, through the
        journal when offline; if it is still being settled, as soon as it is confirmed.
        Never waits and never raises: the cancel goes to the registrar at once."""
        if settled.purchase is not None:
            settled.purchase.add_done_callback(self._refund_voided)

    def _refund_voided(self, settling: Future[RegisterCheque]) -> None:
        if settling.cancelled() or settling.exception() is not None:
            return  # nothing was confirmed (a failed settle cancels its cheque)
        cheque = settling.result()
        book = self.register.book

        def refund() -> dict[str, Any] | None:
            if cheque.state != "confirmed":  # refunded meanwhile (through the API)
                return None
            return book.refund(cheque, None)

        try:
            job = self.register.offline.client.exclusive().submit(refund)
        except Exception as exc:  # the register is stopping: said, as a failed refund
            self._refund_failed(cheque, exc)
            return
        job.add_done_callback(lambda done: self._voided(cheque, done))

    def _voided(self, cheque: RegisterCheque, done: Future[dict[str, Any] | None]) -> None:
        try:
            result = done.result()
        except Exception as exc:
            self._refund_failed(cheque, exc)
            return
        if result is None:
            return
        with self._lock:
            self.counts.voided += 1
        log.warning(
            "pass-through: receipt cancelled at the registrar after its close: cheque %s"
            " refunded%s",
            cheque.number,
            " (queued in the journal)" if result.get("queued") else "",
        )
        self.register.publish_cheque("cheque_refunded", cheque)
        self._save_stats()

    def _refund_failed(self, cheque: RegisterCheque, exc: Exception) -> None:
        with self._lock:
            self.counts.void_failed += 1
        log.error(
            "pass-through: receipt cancelled at the registrar, but its cheque %s (%s) was"
            " not refunded (%s); refund it: POST /v1/cheques/%s/refund",
            cheque.number,
            cheque.id,
            mask_text(str(exc)) or type(exc).__name__,
            cheque.id,
        )
        self._save_stats()

    # ------------------------------------------------------------------ the printer relay

    def cheque_confirmed(self, cheque: RegisterCheque) -> None:
        """A cheque confirmed through the API: its block may go on the POS's own printout."""
        if cheque.card is None:
            return
        with self._lock:
            if cheque.id in self._own:  # the registrar relay printed its block already
                return
            self._recent.append(_Recent(cheque, self.clock()))

    def recent_block(
        self, cheque_number: str | None, *, width: int, window: float
    ) -> list[str] | None:
        """The block of the cheque numbered so (seen in the print stream), else of the most
        recent one confirmed within `window` seconds; each block is handed out once."""
        now = self.clock()
        with self._lock:
            chosen: _Recent | None = None
            if cheque_number:
                chosen = next(
                    (r for r in self._recent if r.cheque.number == cheque_number.strip()), None
                )
            if chosen is None and self._recent and now - self._recent[-1].at <= window:
                chosen = self._recent[-1]
            if chosen is None:
                return None
            self._recent.remove(chosen)
            self.counts.blocks_handed += 1
        try:
            return self._render(chosen.cheque, width)
        except Exception:  # fail open: the printout goes on without it
            log.exception("pass-through: cannot lay out the block of cheque %s", chosen.cheque.id)
            return None

    # ------------------------------------------------------------------ for doctor and status

    def figures(self) -> dict[str, Any]:
        """The sales seen so far and the catalogue the items are matched against."""
        with self._lock:
            return {
                **self.counts.as_dict(),
                "catalogItems": self.catalog.size,
                "catalogError": self.catalog.error,
            }

    def _save_stats(self) -> None:
        if self.stats_path is None:
            return
        data = {**self.figures(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            temporary = self.stats_path.with_name(self.stats_path.name + ".tmp")
            temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self.stats_path)
        except OSError as exc:
            log.warning("pass-through: cannot write %s: %s", self.stats_path, exc)


def read_stats(path: Path) -> dict[str, Any] | None:
    """What the service last wrote for `doctor`; None if there is nothing (yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _line(item: SoldItem) -> tuple[str, Decimal, Decimal, Decimal] | None:
    """The item within the contract's bounds (3 decimals of quantity, cents), or None."""
    try:
        quantity = Decimal(item.quantity).quantize(QUANTITY, ROUND_HALF_UP)
        price = Decimal(item.price).quantize(CENT, ROUND_HALF_UP)
        amount = Decimal(item.amount).quantize(CENT, ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if quantity <= 0 or price < 0 or amount < 0:
        return None
    name = " ".join(item.name.split())[:NAME_MAX] or "?"
    return name, quantity, price, amount
