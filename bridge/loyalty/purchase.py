"""One cheque's conversation with processing.

The purchaseId is made once per cheque and every step's operationId once per step; a
step that failed in a way worth retrying keeps its exact request, so calling the same
method again resends the same bytes (same ids, same `operationDate`) and processing
can recognise the duplicate.  Discount, confirm and cancel keep their request even
after success, so a second confirm is a harmless repeat, never a second purchase.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from bridge.loyalty.errors import LoyaltyError
from bridge.loyalty.protocol import (
    Cheque,
    Identifier,
    Operation,
    ProcessingResponse,
    encode,
)
from bridge.loyalty.request import PreparedRequest, new_id

_STICKY = ("discount", "confirm", "cancel")


class Sender(Protocol):
    def send(self, request: PreparedRequest) -> ProcessingResponse: ...

    def prepare(
        self,
        op: Operation,
        *,
        purchase_id: str | None = None,
        target_operation_id: str | None = None,
        identifier: Identifier | None = None,
        **fields: Any,
    ) -> PreparedRequest: ...


class UnresolvedStep(LoyaltyError):
    """A redemption whose outcome is unknown must be retried (or the purchase cancelled) first."""


@dataclass
class Purchase:
    sender: Sender
    cheque: Cheque
    identifier: Identifier | None = None
    purchase_id: str = field(default_factory=new_id)
    payments: list[tuple[str, Decimal]] = field(default_factory=list)
    last: dict[str, ProcessingResponse] = field(default_factory=dict)
    last_request_id: str = ""
    _pending: dict[str, PreparedRequest] = field(default_factory=dict, repr=False)
    _digested: tuple[Cheque, str] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ steps

    def calculate(
        self, payment_amount: Decimal | None = None, coupons: list[str] | None = None
    ) -> ProcessingResponse:
        key = f"calculate:{self._digest()}:{payment_amount}:{coupons}"
        return self._run(
            "calculate",
            key,
            lambda: self._prepare(
                Operation.CALCULATE,
                cheque=self.cheque,
                payment_amount=payment_amount,
                coupons=coupons,
            ),
        )

    def available(self) -> ProcessingResponse:
        return self._run(
            "available",
            f"available:{self._digest()}",
            lambda: self._prepare(Operation.AVAILABLE, cheque=self.cheque),
        )

    def pay(self, amount: Decimal, pin_code: str | None = None) -> ProcessingResponse:
        pending = self._pending.get("payment")
        if pending is not None and getattr(pending.body, "amount", None) != amount:
            raise UnresolvedStep(
                f"purchase {self.purchase_id}: a redemption of "
                f"{getattr(pending.body, 'amount', '?')} is unresolved; "
                "retry it or cancel the purchase"
            )
        response = self._run(
            "payment",
            "payment",
            lambda: self._prepare(
                Operation.PAYMENT, cheque=self.cheque, amount=amount, pin_code=pin_code
            ),
        )
        self.payments.append(
            (self.last_request_id, response.bonus_amount or response.amount or amount)
        )
        return response

    def cancel_payment(self, payment_operation_id: str) -> ProcessingResponse:
        response = self._run(
            "cancel_operation",
            f"cancel_operation:{payment_operation_id}",
            lambda: self._prepare(
                Operation.CANCEL_OPERATION, target_operation_id=payment_operation_id
            ),
        )
        self.payments = [p for p in self.payments if p[0] != payment_operation_id]
        return response

    def discount(self) -> ProcessingResponse:
        return self._run(
            "discount",
            f"discount:{self._digest()}",
            lambda: self._prepare(Operation.DISCOUNT, cheque=self.cheque),
        )

    def confirm(self) -> ProcessingResponse:
        return self._run("confirm", "confirm", lambda: self._prepare(Operation.CONFIRM))

    def cancel(self) -> ProcessingResponse:
        return self._run("cancel", "cancel", lambda: self._prepare(Operation.CANCEL))

    def settle(self) -> None:
        """The purchase is over (confirmed or cancelled): let go of the steps' requests and
        answers.  A register keeps its recent cheques for receipts and refunds, which need
        the purchase id and the lines, not the exchange that led there; the journal holds
        whatever still has to reach processing."""
        self._pending.clear()
        self.last.clear()
        self._digested = None

    @property
    def redeemed(self) -> Decimal:
        return sum((amount for _, amount in self.payments), Decimal(0))

    # ------------------------------------------------------------------ internals

    def step_request(self, kind: str) -> PreparedRequest | None:
        """The stored request of a sticky or unresolved step (for the journal and tests)."""
        for key, request in self._pending.items():
            if key == kind or key.startswith(kind + ":"):
                return request
        return None

    def _prepare(self, op: Operation, **fields: Any) -> PreparedRequest:
        return self.sender.prepare(
            op, purchase_id=self.purchase_id, identifier=self.identifier, **fields
        )

    def _run(self, kind: str, key: str, build: Callable[[], PreparedRequest]) -> ProcessingResponse:
        request = self._pending.get(key)
        if request is None:
            request = build()
            self._pending[key] = request
        self.last_request_id = request.operation_id
        try:
            response = self.sender.send(request)
        except LoyaltyError as exc:
            if not exc.retryable and kind not in _STICKY:
                del self._pending[key]
            raise
        if kind not in _STICKY:
            del self._pending[key]
        self.last[kind] = response
        return response

    def _digest(self) -> str:
        """Which version of the cheque a step was for (cached: the cheque is immutable)."""
        if self._digested is None or self._digested[0] is not self.cheque:
            self._digested = (self.cheque, hashlib.sha256(encode(self.cheque)).hexdigest()[:16])
        return self._digested[1]


@dataclass(frozen=True)
class PurchaseResult:
    purchase_id: str
    total: Decimal
    discount: Decimal
    redeemed: Decimal
    accrued: Decimal
    balance: Decimal | None
    cashier_message: str | None
    cheque_message: str | None
    queued: bool = False  # processing was unreachable: accrual happens when the journal is sent


def run_purchase(
    sender: Sender, cheque: Cheque, identifier: Identifier | None, pay: Decimal | None = None
) -> PurchaseResult:
    """The contract's sequence: calculate, optional payment, discount, confirm.

    If any step after a redemption fails for good, the purchase is cancelled so no
    bonuses stay held; the original error is re-raised.
    """
    purchase = Purchase(sender, cheque, identifier)
    purchase.calculate(payment_amount=pay)
    try:
        if pay:
            purchase.pay(pay)
        final = purchase.discount()
        confirmed = purchase.confirm()
    except LoyaltyError as exc:
        if not exc.retryable:
            try:
                purchase.cancel()
            except LoyaltyError:
                pass
        raise
    cheque_info = final.cheque
    discount = (cheque_info.total_discount if cheque_info else None) or Decimal(0)
    messages = [r.cheque_message for r in (final, confirmed) if r.cheque_message]
    cashier = [r.cashier_message for r in (final, confirmed) if r.cashier_message]
    return PurchaseResult(
        purchase_id=purchase.purchase_id,
        total=cheque.total(),
        discount=discount,
        redeemed=purchase.redeemed,
        accrued=confirmed.accrued_amount or final.accrued_amount or Decimal(0),
        balance=confirmed.balance if confirmed.balance is not None else final.balance,
        cashier_message=" ".join(dict.fromkeys(cashier)) or None,
        cheque_message=" ".join(dict.fromkeys(messages)) or None,
        queued=getattr(confirmed, "local", None) == "queued",
    )
