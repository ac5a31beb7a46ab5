"""Open cheques of the register, as the POS API sees them.

The POS owns the cheque; we keep a copy with the customer's card and the loyalty
purchase attached, because a card swipe or a loyalty scan arrives from a device, not
from the POS, and must land on the cheque being rung up.  Every loyalty step goes
through the `OfflineClient`, so the API behaves the same online and offline.

A cheque may hold bonuses at processing, so nothing here forgets an open cheque: each
change is written through to the `ChequeStore` (and reloaded at start), an open cheque
leaves only by confirm or cancel, and one left alone is cancelled after `expire_seconds`
or at shift close - through the journal, so the held bonuses come back even offline.
Memory holds the open cheques (at most `max_open`) and the most recent closed ones;
older closed cheques are read back from the file for receipts and refunds.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

from bridge.loyalty import errors
from bridge.loyalty.journal import JournalUnavailable, describe_error
from bridge.loyalty.offline import MUST_REACH, LocalResponse, OfflineClient
from bridge.loyalty.protocol import (
    Cheque,
    ChequeLine,
    Identifier,
    Operation,
    ProcessingResponse,
    local_now,
)
from bridge.loyalty.purchase import Purchase
from bridge.loyalty.request import PreparedRequest, new_id
from bridge.service.cheque import (
    CENT,
    MAX_LINES,
    MAX_TOTAL,
    ChequeError,
    Line,
    RefundRecord,
    RegisterCheque,
)
from bridge.service.cheque_store import ChequeStore, restore
from drivers.masking import mask_text

log = logging.getLogger("posbridge.cheques")


class _SavingSender:
    """A purchase's sender that makes the cheque durable before a step that holds bonuses
    or must reach processing: the stored purchase (its id, the step's very request) is
    then on disk before processing can act on it, so a crash in between orphans nothing.

    It refers to its cheque weakly: cheque -> purchase -> sender -> cheque would be a cycle,
    and cycles of closed cheques wait for the collector's rare full pass (measured: +4 MB
    RSS over a shift), while plain references let each go the moment it is dropped."""

    def __init__(self, book: ChequeBook, cheque: RegisterCheque) -> None:
        self._book = book
        self._cheque = weakref.ref(cheque)

    def prepare(
        self,
        op: Operation,
        *,
        purchase_id: str | None = None,
        target_operation_id: str | None = None,
        identifier: Identifier | None = None,
        **fields: Any,
    ) -> PreparedRequest:
        return self._book.sender.prepare(
            op,
            purchase_id=purchase_id,
            target_operation_id=target_operation_id,
            identifier=identifier,
            **fields,
        )

    def send(self, request: PreparedRequest) -> ProcessingResponse:
        cheque = self._cheque()
        if cheque is not None and (request.op is Operation.PAYMENT or request.op in MUST_REACH):
            self._book.step_aside()  # the cheque file and the journal need no turn
            try:
                self._book.save(cheque, durable=request.op is Operation.PAYMENT)
            except sqlite3.Error as exc:  # the disk under the journal, most likely (full)
                failed = JournalUnavailable(self._book.store.path, describe_error(exc))
                if request.op is Operation.PAYMENT:
                    raise failed from exc  # a hold nobody could find again: not sent
                # a must-reach step: the journal (same disk) decides; it refuses and
                # undoes, or takes it if there is room after all
                log.error(
                    "cheque %s not saved before %s: %s", cheque.number, request.op.value, failed
                )
        return self._book.sender.send(request)


class ChequeBook:
    """The register's cheques; the most recent open one receives swiped or scanned cards.

    Open cheques live in memory; of the closed ones only the `keep` most recent (a POS asks
    for the receipt or the refund of the sale it just made), ~6 kB each.  Older ones are
    read back from the cheque file when asked for (about a millisecond more per request).
    """

    def __init__(
        self,
        sender: OfflineClient,
        store: ChequeStore,
        *,
        max_open: int = 200,
        expire_seconds: float = 12 * 3600,
        keep: int = 20,
        retention_seconds: float = 14 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sender = sender
        self.store = store
        self.max_open = max_open
        self.expire_seconds = expire_seconds
        self.retention_seconds = retention_seconds
        self.clock = clock
        self._keep = keep
        self._restore = restore
        self._lock = threading.Lock()
        self._open: dict[str, RegisterCheque] = {}
        self._closed: OrderedDict[str, RegisterCheque] = OrderedDict()
        for data in store.open_records():
            try:
                cheque = restore(data, self._purchase_sender)
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                # one unreadable record must not keep the register from starting
                log.error(
                    "open cheque %s in %s cannot be read (%s: %s); its purchase, if "
                    "any, is left to processing",
                    data.get("id"),
                    store.path,
                    type(exc).__name__,
                    exc,
                )
                continue
            self._open[cheque.id] = cheque
        self._numbers = itertools.count(store.last_seq() + 1)
        self._pruned_at = float("-inf")
        self.on_expired: Callable[[RegisterCheque], None] | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        if self._open:
            log.warning("%d open cheque(s) restored from %s", len(self._open), store.path)

    def _purchase_sender(self, cheque: RegisterCheque) -> _SavingSender:
        return _SavingSender(self, cheque)

    def step_aside(self) -> None:
        """Local work ahead (the cheque file, the cheque's bookkeeping): if this thread
        holds the register's turn, the next call is sent meanwhile (`Sequencer.step_aside`)."""
        self.sender.client.exclusive().step_aside()

    @contextmanager
    def _holding(self, cheque: RegisterCheque) -> Iterator[None]:
        """The cheque's lock, waited for out of the register's turn: the call holding it
        may have stepped aside and need the turn back to finish."""
        if not cheque.lock.acquire(blocking=False):
            self.sender.client.exclusive().step_aside(force=True)
            cheque.lock.acquire()
        try:
            yield
        finally:
            cheque.lock.release()

    def save(self, cheque: RegisterCheque, durable: bool = False) -> None:
        """Write the cheque through.  A failed write (sqlite3.Error: the journal's disk,
        full or failing) stops the step before anything reaches processing, except where
        the caller decides otherwise (a must-reach step goes on to the journal)."""
        cheque.touched_at = self.clock()
        self.store.save(cheque, durable)

    # ------------------------------------------------------------------ book-keeping

    def open(
        self, number: str | None = None, card: str | None = None, lines: list[Line] | None = None
    ) -> RegisterCheque:
        if lines is not None and len(lines) > MAX_LINES:
            raise _too_many_lines(len(lines))
        with self._lock:
            if len(self._open) >= self.max_open:
                raise ChequeError(
                    "too_many_open_cheques",
                    f"{len(self._open)} cheques are open (limit {self.max_open}): confirm or "
                    "cancel the abandoned ones, or close the shift",
                    429,
                )
            cheque = RegisterCheque(
                id=new_id(),
                number=number or f"{time.strftime('%Y%m%d')}-{next(self._numbers)}",
                opened_at=local_now(),
                lines=list(lines or []),
                card=card,
            )
            self.save(cheque)
            self._open[cheque.id] = cheque
        return cheque

    def _closed_now(self, cheque: RegisterCheque) -> None:
        """Keep a closed cheque among the recent ones; older ones stay in the file only."""
        with self._lock:
            self._open.pop(cheque.id, None)
            self._closed[cheque.id] = cheque
            self._closed.move_to_end(cheque.id)
            while len(self._closed) > self._keep:
                self._closed.popitem(last=False)

    def get(self, cheque_id: str) -> RegisterCheque:
        with self._lock:
            cheque = self._open.get(cheque_id) or self._closed.get(cheque_id)
            if cheque is None:
                data = self.store.load(cheque_id)
                if data is not None:
                    cheque = self._restore(data, self._purchase_sender)
                    if cheque.is_open:  # not expected: every open cheque is in memory
                        self._open[cheque.id] = cheque
                    else:
                        self._closed[cheque.id] = cheque
                        while len(self._closed) > self._keep:
                            self._closed.popitem(last=False)
        if cheque is None:
            raise ChequeError("cheque_not_found", f"no cheque {cheque_id}", 404)
        return cheque

    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    def summary(self) -> dict[str, Any]:
        """What /v1/status tells of open cheques: how many against the cap, how many hold
        bonuses at processing, and how old the oldest is (an abandoned one shows here
        before it expires)."""
        with self._lock:
            open_ = list(self._open.values())
        now = self.clock()
        oldest = min((c.touched_at for c in open_), default=None)
        return {
            "open": len(open_),
            "maxOpen": self.max_open,
            "holdingBonuses": sum(1 for c in open_ if c.redeemed),
            "oldestUntouchedSeconds": None if oldest is None else round(now - oldest, 1),
        }

    def current(self) -> RegisterCheque | None:
        with self._lock:
            open_ = [c for c in self._open.values() if c.is_open]
        return open_[-1] if open_ else None

    def attach_card(self, card: str, cheque_id: str | None = None) -> RegisterCheque | None:
        """Attach a presented card: to the given cheque, else the current open one.

        Another card starts the loyalty part of the cheque afresh.  Bonuses already held
        for the previous card are never moved or dropped silently: the change is refused
        (`redemption_held`) until the cashier releases them (`release_redemption`) or
        cancels the cheque, because the POS counted them as a payment."""
        cheque = self.get(cheque_id) if cheque_id else self.current()
        if cheque is None:
            return None
        with self._holding(cheque):
            self._editable(cheque)
            if card == cheque.card:
                return cheque  # the same card again (a second swipe): nothing changes
            if self._holds_redemption(cheque):
                raise ChequeError(
                    "redemption_held",
                    f"{cheque.redeemed} bonuses of card {cheque.masked_card} are held for this "
                    f"cheque: release them (DELETE /v1/cheques/{cheque.id}/payments) or cancel "
                    "the cheque before changing the card",
                )
            self._drop_purchase(cheque)
            cheque.reset_loyalty()
            cheque.card = card
            self.save(cheque)
        return cheque

    def release_redemption(self, cheque: RegisterCheque) -> RegisterCheque:
        """Give back every redemption held for the cheque (journaled cancel of its purchase);
        the cheque stays open with its lines and card, and a new purchase starts."""
        with self._holding(cheque):
            self._editable(cheque)
            self._drop_purchase(cheque)
            cheque.reset_loyalty()
            self.save(cheque)
        return cheque

    def _drop_purchase(self, cheque: RegisterCheque) -> None:
        """Cancel the purchase at processing if it may hold bonuses (must-reach: journaled)."""
        purchase = cheque.purchase
        if purchase is not None and self._holds_redemption(cheque):
            response = purchase.cancel()
            purchase.settle()
            cheque.queued = getattr(response, "local", None) == "queued"

    @staticmethod
    def _holds_redemption(cheque: RegisterCheque) -> bool:
        purchase = cheque.purchase
        return bool(cheque.redeemed) or (
            purchase is not None
            and (bool(purchase.payments) or purchase.step_request("payment") is not None)
        )

    def set_lines(self, cheque: RegisterCheque, lines: list[Line], replace: bool) -> None:
        with self._holding(cheque):
            self._editable(cheque)
            if cheque.redeemed:
                raise ChequeError(
                    "cheque_locked",
                    "bonuses are redeemed for this cheque: cancel it to change lines",
                )
            new = list(lines) if replace else [*cheque.lines, *lines]
            if len(new) > MAX_LINES:
                raise _too_many_lines(len(new))
            total = sum((line.amount for line in new), Decimal(0))
            if total > MAX_TOTAL:
                raise ChequeError(
                    "total_too_large",
                    f"the lines would total {total}, over the limit of {MAX_TOTAL:f}",
                    422,
                )
            cheque.lines = new
            if cheque.purchase is not None:
                cheque.purchase.cheque = cheque.wire()
            cheque.state = "open"
            self.save(cheque)

    @staticmethod
    def _editable(cheque: RegisterCheque) -> None:
        if not cheque.is_open:
            raise ChequeError("cheque_closed", f"cheque {cheque.number} is {cheque.state}")

    # ------------------------------------------------------------------ loyalty steps

    def _purchase(self, cheque: RegisterCheque) -> Purchase:
        if cheque.purchase is None:
            ident = Identifier(value=cheque.card) if cheque.card else None
            cheque.purchase = Purchase(self._purchase_sender(cheque), cheque.wire(), ident)
            self.step_aside()  # the cheque file needs no turn
            self.save(cheque)  # its id is on disk before processing hears of it
        return cheque.purchase

    def calculate(self, cheque: RegisterCheque) -> RegisterCheque:
        with self._holding(cheque):
            self._editable(cheque)
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            before = _calculated(cheque)
            try:
                response = purchase.calculate()
            except errors.CardBlocked as exc:
                self._blocked(cheque, exc)
                response = self._anonymous_calculate(cheque)
            self.step_aside()  # answered: the bookkeeping needs no turn
            self._absorb(cheque, response)
            info = response.cheque
            cheque.discount = (info.total_discount if info else None) or Decimal(0)
            cheque.available = response.available_amount or Decimal(0)
            if response.balance is not None and cheque.balance_before is None:
                cheque.balance_before = response.balance
            cheque.state = "calculated"
            if _calculated(cheque) != before:  # the till calculating again: nothing new
                self.save(cheque)
            else:
                cheque.touched_at = self.clock()
        return cheque

    def _blocked(self, cheque: RegisterCheque, exc: errors.CardBlocked) -> None:
        """A blocked card gets no discount; the purchase goes on without it."""
        cheque.card_blocked = True
        cheque.cashier_message = exc.cashier_text
        cheque.purchase = Purchase(self._purchase_sender(cheque), cheque.wire(), None)
        self.save(cheque)

    def _anonymous_calculate(self, cheque: RegisterCheque) -> ProcessingResponse:
        if cheque.purchase is None:  # _blocked has just set an anonymous one
            raise ChequeError("internal_error", "no anonymous purchase for a blocked card", 500)
        return cheque.purchase.calculate()

    def pay(self, cheque: RegisterCheque, amount: Decimal) -> RegisterCheque:
        with self._holding(cheque):
            self._editable(cheque)
            if cheque.card is None or cheque.card_blocked:
                raise ChequeError(
                    "no_card", "bonuses are redeemed from a card: attach one first", 422
                )
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            try:
                response = purchase.pay(amount)
            except BaseException:
                cheque.redeemed = purchase.redeemed
                self.save(cheque)
                raise
            cheque.redeemed = purchase.redeemed
            self._absorb(cheque, response)
            self.save(cheque)
        return cheque

    def confirm(self, cheque: RegisterCheque) -> RegisterCheque:
        with self._holding(cheque):
            if cheque.state == "confirmed":
                return cheque
            self._editable(cheque)
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            try:
                final = purchase.discount()
                done = purchase.confirm()
            except JournalUnavailable as exc:
                if exc.undone:  # the purchase was cancelled at processing: a retry starts anew
                    purchase.settle()
                    cheque.reset_loyalty()
                    cheque.cashier_message = exc.cashier_text
                    try:
                        self.save(cheque)
                    except sqlite3.Error:
                        pass  # the same full disk; the cheque is kept in memory
                raise
            self.step_aside()  # answered: the bookkeeping needs no turn
            cheque.queued = any(getattr(r, "local", None) == "queued" for r in (final, done))
            cheque.offline = cheque.offline or cheque.queued
            for response in (final, done):
                self._absorb(cheque, response)
            if not cheque.queued:
                cheque.accrued = done.accrued_amount or final.accrued_amount or Decimal(0)
                cheque.balance_after = done.balance if done.balance is not None else final.balance
            cheque.state = "confirmed"
            purchase.settle()
            self.save(cheque)
        self._closed_now(cheque)
        return cheque

    def cancel(self, cheque: RegisterCheque, expired: bool = False) -> RegisterCheque:
        with self._holding(cheque):
            if cheque.state == "cancelled":
                return cheque
            self._editable(cheque)
            if cheque.purchase is not None:
                try:
                    response = cheque.purchase.cancel()
                except errors.BusinessError as exc:
                    if not expired:
                        raise
                    # processing refused the cancel of an abandoned cheque (e.g. it was
                    # confirmed from the journal before a crash): nothing is held any more
                    log.warning(
                        "expired cheque %s: processing refused its cancel: %s",
                        cheque.number,
                        exc.code,
                    )
                    response = None
                cheque.queued = getattr(response, "local", None) == "queued"
                cheque.purchase.settle()
            cheque.state = "cancelled"
            if expired:
                cheque.expired = True
                cheque.cashier_message = "Cheque expired: cancelled, held bonuses given back"
            self.save(cheque)
        self._closed_now(cheque)
        return cheque

    # ------------------------------------------------------------------ expiry

    def expire(self, now: float | None = None, everything: bool = False) -> list[RegisterCheque]:
        """Cancel open cheques left alone for `expire_seconds` (all of them at shift close).

        Each cancel runs in the register's turn, like the till's own, and is journaled
        (a must-reach step), so it happens even while processing is unreachable."""
        now = self.clock() if now is None else now
        with self._lock:
            due = [
                c
                for c in self._open.values()
                if everything or now - c.touched_at >= self.expire_seconds
            ]
        turn = self.sender.client.exclusive()
        expired = []
        for cheque in due:
            if self._stop.is_set() and not everything:
                break  # the service is stopping: the rest are due at the next start
            try:
                expired.append(turn.call(partial(self.cancel, cheque, expired=True)))
            except ChequeError:
                continue  # closed meanwhile by the till
            except Exception:  # the next sweep tries again; the error is in the log
                log.exception("cannot expire cheque %s", cheque.number)
                continue
            if self.on_expired is not None:
                self.on_expired(cheque)
        if expired:
            log.warning(
                "%d abandoned cheque(s) cancelled%s",
                len(expired),
                " at shift close" if everything else " after expiry",
            )
        if now - self._pruned_at >= 3600 or everything:
            self._pruned_at = now
            try:
                self.store.prune(self.retention_seconds, now)
            except sqlite3.Error as exc:  # old closed cheques stay a while longer
                log.error("cannot prune closed cheques in %s: %s", self.store.path, exc)
        return expired

    def start(self) -> None:
        """Sweep for abandoned cheques in the background (a few times per expiry period)."""
        if self._sweeper is None:
            self._stop.clear()
            self._sweeper = threading.Thread(
                target=self._sweep, name="posbridge-cheques", daemon=True
            )
            self._sweeper.start()

    def _sweep(self) -> None:
        period = min(60.0, max(0.05, self.expire_seconds / 10))
        while not self._stop.wait(period):
            try:
                self.expire()
            except Exception:  # keep sweeping; the error is in the log
                log.exception("cheque expiry sweep failed")

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout)
            self._sweeper = None

    # ------------------------------------------------------------------ refunds

    def refund(
        self, cheque: RegisterCheque, positions: dict[int, Decimal] | None
    ) -> dict[str, Any]:
        """Return lines (position -> quantity; all that is left when None) of a confirmed
        cheque.  What was refunded, queued or not, is tracked per position, so asking for
        more than is left is refused at once and never reaches the journal."""
        with self._holding(cheque):
            if cheque.state not in ("confirmed", "refunded") or cheque.purchase is None:
                raise ChequeError("not_confirmed", "only a confirmed cheque can be refunded")
            returned = self._refund_lines(cheque, positions)
            refund_cheque = Cheque(
                number=f"{cheque.number}-R{len(cheque.refunds) + 1}",
                date=local_now(),
                lines=returned,
            )
            request = self.sender.client.prepare_refund(
                cheque.purchase.purchase_id, refund_cheque, cheque.card
            )
            record = RefundRecord(
                request.purchase_id or "",
                request.operation_id,
                {ln.position: (ln.quantity, ln.amount) for ln in returned},
            )
            cheque.refunds.append(record)
            self.save(cheque, durable=True)  # counted before it can reach processing
            try:
                response = self.sender.send(request)
            except BaseException:
                cheque.refunds.remove(record)  # refused or never journaled: nothing taken
                try:
                    self.save(cheque)
                except sqlite3.Error as exc:  # the file keeps counting it: errs on the safe side
                    log.error("cheque %s: refund not uncounted on disk: %s", cheque.number, exc)
                raise
            record.queued = isinstance(response, LocalResponse) and response.local == "queued"
            cheque.state = "refunded"
            self.save(cheque)
            return {
                "refundId": request.purchase_id,
                "queued": record.queued,
                "amount": refund_cheque.total(),
                "balance": response.balance,
                "cashierMessage": response.cashier_message,
            }

    @staticmethod
    def _refund_lines(
        cheque: RegisterCheque, positions: dict[int, Decimal] | None
    ) -> list[ChequeLine]:
        if positions is not None:
            unknown = sorted(p for p in positions if not 1 <= p <= len(cheque.lines))
            if unknown or not positions:
                raise ChequeError(
                    "bad_lines",
                    "no such positions on the cheque: "
                    f"{', '.join(map(str, unknown))} (it has {len(cheque.lines)})",
                    422,
                )
        done = cheque.refunded()
        returned = []
        for pos, line in enumerate(cheque.lines, 1):
            if positions is not None and pos not in positions:
                continue
            qty_done, amount_done = done.get(pos, (Decimal(0), Decimal(0)))
            qty_left, amount_left = line.quantity - qty_done, line.amount - amount_done
            qty = qty_left if positions is None else positions[pos]
            if positions is None and qty_left <= 0:
                continue
            if qty <= 0:
                raise ChequeError("bad_quantity", f"line {pos}: refund quantity must be > 0", 422)
            if qty > qty_left:
                raise ChequeError(
                    "over_refund",
                    f"line {pos}: {qty} to refund, but only {qty_left} of {line.quantity} "
                    "is left to refund",
                    409,
                )
            amount = (
                amount_left
                if qty == qty_left
                else min(amount_left, (line.amount * qty / line.quantity).quantize(CENT))
            )
            returned.append(
                ChequeLine(
                    position=pos,
                    goods_id=line.goods_id,
                    barcode=line.barcode,
                    name=line.name,
                    price=line.price,
                    quantity=qty,
                    amount=amount,
                )
            )
        if not returned:
            raise ChequeError(
                "over_refund", f"cheque {cheque.number} is already refunded in full", 409
            )
        already = sum((a for _, a in done.values()), Decimal(0))
        if already + sum((ln.amount for ln in returned), Decimal(0)) > cheque.total:
            raise ChequeError(
                "over_refund",
                f"refunds would exceed the cheque total "
                f"{cheque.total} ({already} refunded already)",
                409,
            )
        return returned

    @staticmethod
    def _absorb(cheque: RegisterCheque, response: ProcessingResponse) -> None:
        if isinstance(response, LocalResponse) and response.local in ("offline", "queued"):
            cheque.offline = True
        # processing's texts go to the POS, the cheque store and the receipt: masked here
        if response.cashier_message:
            cheque.cashier_message = mask_text(response.cashier_message)
        if response.cheque_message:
            cheque.cheque_message = mask_text(response.cheque_message)


def _calculated(cheque: RegisterCheque) -> tuple[Any, ...]:
    """What a calculate may change on a cheque (a calculate holds nothing at processing)."""
    return (
        cheque.state,
        cheque.discount,
        cheque.available,
        cheque.balance_before,
        cheque.cashier_message,
        cheque.cheque_message,
        cheque.offline,
        cheque.card_blocked,
        cheque.purchase,
    )


def _too_many_lines(count: int) -> ChequeError:
    return ChequeError(
        "too_many_lines", f"a cheque holds at most {MAX_LINES} lines; this would make {count}", 422
    )
