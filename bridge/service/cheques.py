"""Open cheques of the register, as the POS API sees them.

The POS owns the cheque; we keep a copy with the customer's card and the loyalty
purchase attached, because a card swipe or a loyalty scan arrives from a device, not
from the POS, and must land on the cheque being rung up.  Every loyalty step goes
through the `OfflineClient`, so the API behaves the same online and offline.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from bridge.loyalty import errors
from bridge.loyalty.client import new_id
from bridge.loyalty.offline import LocalResponse, OfflineClient
from bridge.loyalty.protocol import (
    Cheque,
    ChequeLine,
    Identifier,
    ProcessingResponse,
    local_now,
    mask_card,
)
from bridge.loyalty.purchase import Purchase

State = Literal["open", "calculated", "confirmed", "cancelled", "refunded"]
CENT = Decimal("0.01")


class ChequeError(Exception):
    """A request that does not fit the cheque's state; `code` is the API's machine code."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Line:
    goods_id: str
    name: str
    price: Decimal
    quantity: Decimal
    amount: Decimal
    barcode: str | None = None

    def wire(self, position: int) -> ChequeLine:
        return ChequeLine(position=position, goods_id=self.goods_id, barcode=self.barcode,
                          name=self.name, price=self.price, quantity=self.quantity,
                          amount=self.amount)


@dataclass
class RegisterCheque:
    id: str
    number: str
    opened_at: datetime
    lines: list[Line] = field(default_factory=list)
    card: str | None = None
    state: State = "open"
    purchase: Purchase | None = None
    balance_before: Decimal | None = None
    discount: Decimal = Decimal(0)
    available: Decimal = Decimal(0)
    redeemed: Decimal = Decimal(0)
    accrued: Decimal | None = None
    balance_after: Decimal | None = None
    offline: bool = False
    queued: bool = False
    card_blocked: bool = False
    cashier_message: str | None = None
    cheque_message: str | None = None
    refunds: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wire: tuple[list[Line], Cheque] | None = field(default=None, repr=False)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def masked_card(self) -> str | None:
        return mask_card(self.card) if self.card else None

    def wire(self) -> Cheque:
        """The contract's cheque, built once per version of the lines."""
        if not self.lines:
            raise ChequeError("empty_cheque", "the cheque has no lines yet", 422)
        if self._wire is None or self._wire[0] is not self.lines:
            self._wire = (self.lines, Cheque(
                number=self.number, date=self.opened_at,
                lines=[line.wire(i + 1) for i, line in enumerate(self.lines)]))
        return self._wire[1]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "number": self.number, "state": self.state,
            "card": self.masked_card, "total": self.total, "discount": self.discount,
            "availableBonuses": self.available, "redeemed": self.redeemed,
            "accrued": self.accrued, "balanceBefore": self.balance_before,
            "balanceAfter": self.balance_after, "offline": self.offline, "queued": self.queued,
            "cardBlocked": self.card_blocked, "cashierMessage": self.cashier_message,
            "chequeMessage": self.cheque_message,
            "purchaseId": self.purchase.purchase_id if self.purchase else None,
            "lines": [
                {"position": i + 1, "goodsId": ln.goods_id, "barcode": ln.barcode,
                 "name": ln.name, "price": ln.price, "quantity": ln.quantity,
                 "amount": ln.amount}
                for i, ln in enumerate(self.lines)
            ],
        }


class ChequeBook:
    """The register's cheques; the most recent open one receives swiped or scanned cards."""

    def __init__(self, sender: OfflineClient, keep: int = 200) -> None:
        self.sender = sender
        self._cheques: dict[str, RegisterCheque] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._keep = keep

    # ------------------------------------------------------------------ book-keeping

    def open(self, number: str | None = None, card: str | None = None,
             lines: list[Line] | None = None) -> RegisterCheque:
        cheque = RegisterCheque(
            id=new_id(), number=number or f"{time.strftime('%Y%m%d')}-{next(self._numbers)}",
            opened_at=local_now(), lines=list(lines or []), card=card,
        )
        with self._lock:
            self._cheques[cheque.id] = cheque
            self._forget_old()
        return cheque

    def _forget_old(self) -> None:
        done = [c for c in self._cheques.values() if c.state != "open"]
        for c in done[: max(0, len(self._cheques) - self._keep)]:
            del self._cheques[c.id]

    def get(self, cheque_id: str) -> RegisterCheque:
        with self._lock:
            cheque = self._cheques.get(cheque_id)
        if cheque is None:
            raise ChequeError("cheque_not_found", f"no cheque {cheque_id}", 404)
        return cheque

    def current(self) -> RegisterCheque | None:
        with self._lock:
            open_ = [c for c in self._cheques.values() if c.state in ("open", "calculated")]
        return open_[-1] if open_ else None

    def attach_card(self, card: str, cheque_id: str | None = None) -> RegisterCheque | None:
        """Attach a presented card: to the given cheque, else the current open one."""
        cheque = self.get(cheque_id) if cheque_id else self.current()
        if cheque is None:
            return None
        with cheque.lock:
            self._editable(cheque)
            if cheque.redeemed:
                raise ChequeError("card_locked", "bonuses were already redeemed from another card")
            cheque.card = card
            cheque.purchase = None
            cheque.state = "open"
        return cheque

    def set_lines(self, cheque: RegisterCheque, lines: list[Line], replace: bool) -> None:
        with cheque.lock:
            self._editable(cheque)
            if cheque.redeemed:
                raise ChequeError("cheque_locked",
                                  "bonuses are redeemed for this cheque: cancel it to change lines")
            cheque.lines = list(lines) if replace else [*cheque.lines, *lines]
            if cheque.purchase is not None:
                cheque.purchase.cheque = cheque.wire()
            cheque.state = "open"

    @staticmethod
    def _editable(cheque: RegisterCheque) -> None:
        if cheque.state not in ("open", "calculated"):
            raise ChequeError("cheque_closed", f"cheque {cheque.number} is {cheque.state}")

    # ------------------------------------------------------------------ loyalty steps

    def _purchase(self, cheque: RegisterCheque) -> Purchase:
        if cheque.purchase is None:
            ident = Identifier(value=cheque.card) if cheque.card else None
            cheque.purchase = Purchase(self.sender, cheque.wire(), ident)
        return cheque.purchase

    def calculate(self, cheque: RegisterCheque) -> RegisterCheque:
        with cheque.lock:
            self._editable(cheque)
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            try:
                response = purchase.calculate()
            except errors.CardBlocked as exc:
                self._blocked(cheque, exc)
                response = self._anonymous_calculate(cheque)
            self._absorb(cheque, response)
            info = response.cheque
            cheque.discount = (info.total_discount if info else None) or Decimal(0)
            cheque.available = response.available_amount or Decimal(0)
            if response.balance is not None and cheque.balance_before is None:
                cheque.balance_before = response.balance
            cheque.state = "calculated"
        return cheque

    def _blocked(self, cheque: RegisterCheque, exc: errors.CardBlocked) -> None:
        """A blocked card gets no discount; the purchase goes on without it."""
        cheque.card_blocked = True
        cheque.cashier_message = exc.cashier_text
        cheque.purchase = Purchase(self.sender, cheque.wire(), None)

    def _anonymous_calculate(self, cheque: RegisterCheque) -> ProcessingResponse:
        assert cheque.purchase is not None
        return cheque.purchase.calculate()

    def pay(self, cheque: RegisterCheque, amount: Decimal) -> RegisterCheque:
        with cheque.lock:
            self._editable(cheque)
            if cheque.card is None or cheque.card_blocked:
                raise ChequeError("no_card", "bonuses are redeemed from a card: attach one first",
                                  422)
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            response = purchase.pay(amount)
            cheque.redeemed = purchase.redeemed
            self._absorb(cheque, response)
        return cheque

    def confirm(self, cheque: RegisterCheque) -> RegisterCheque:
        with cheque.lock:
            if cheque.state == "confirmed":
                return cheque
            self._editable(cheque)
            purchase = self._purchase(cheque)
            purchase.cheque = cheque.wire()
            final = purchase.discount()
            done = purchase.confirm()
            cheque.queued = any(getattr(r, "local", None) == "queued" for r in (final, done))
            cheque.offline = cheque.offline or cheque.queued
            for response in (final, done):
                self._absorb(cheque, response)
            if not cheque.queued:
                cheque.accrued = done.accrued_amount or final.accrued_amount or Decimal(0)
                cheque.balance_after = done.balance if done.balance is not None else final.balance
            cheque.state = "confirmed"
            purchase.settle()
        return cheque

    def cancel(self, cheque: RegisterCheque) -> RegisterCheque:
        with cheque.lock:
            if cheque.state == "cancelled":
                return cheque
            self._editable(cheque)
            if cheque.purchase is not None:
                response = cheque.purchase.cancel()
                cheque.queued = getattr(response, "local", None) == "queued"
                cheque.purchase.settle()
            cheque.state = "cancelled"
        return cheque

    def refund(
        self, cheque: RegisterCheque, positions: dict[int, Decimal] | None
    ) -> dict[str, Any]:
        """Return lines (position -> quantity; all when None) of a confirmed cheque."""
        with cheque.lock:
            if cheque.state not in ("confirmed", "refunded") or cheque.purchase is None:
                raise ChequeError("not_confirmed", "only a confirmed cheque can be refunded")
            returned = []
            for i, line in enumerate(cheque.lines):
                pos = i + 1
                if positions is not None and pos not in positions:
                    continue
                qty = line.quantity if positions is None else positions[pos]
                if qty <= 0 or qty > line.quantity:
                    raise ChequeError(
                        "bad_quantity",
                        f"line {pos}: refund quantity must be in (0, {line.quantity}]",
                        422,
                    )
                amount = (line.amount * qty / line.quantity).quantize(CENT)
                returned.append(ChequeLine(position=pos, goods_id=line.goods_id,
                                           barcode=line.barcode, name=line.name,
                                           price=line.price, quantity=qty, amount=amount))
            if not returned:
                raise ChequeError("bad_lines", "no such positions on the cheque", 422)
            if positions is not None and set(positions) - {ln.position for ln in returned}:
                raise ChequeError("bad_lines", "unknown positions in the refund", 422)
            refund_cheque = Cheque(number=f"{cheque.number}-R{len(cheque.refunds) + 1}",
                                   date=local_now(), lines=returned)
            client = self.sender.client
            request = client.prepare_refund(cheque.purchase.purchase_id, refund_cheque,
                                            cheque.card)
            response = self.sender.send(request)
            cheque.refunds.append(request.operation_id)
            cheque.state = "refunded"
            return {
                "refundId": request.purchase_id,
                "queued": isinstance(response, LocalResponse) and response.local == "queued",
                "amount": refund_cheque.total(),
                "balance": response.balance,
                "cashierMessage": response.cashier_message,
            }

    @staticmethod
    def _absorb(cheque: RegisterCheque, response: ProcessingResponse) -> None:
        if isinstance(response, LocalResponse) and response.local in ("offline", "queued"):
            cheque.offline = True
        if response.cashier_message:
            cheque.cashier_message = response.cashier_message
        if response.cheque_message:
            cheque.cheque_message = response.cheque_message
