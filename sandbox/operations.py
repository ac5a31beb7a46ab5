"""The nine contract operations, each in one SQLite transaction, stored for exact replay.

A business refusal rolls back whatever the handler had written, so a refused step leaves no
trace.  Only successful steps are stored under (register, operationId); a retry of a stored
step gets the stored response back, byte for byte, and changes nothing: that is what lets a
register replay a journal safely.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bridge.loyalty.protocol import (
    AvailableRequest,
    BalanceRequest,
    CalculateRequest,
    DiscountRequest,
    ErrorCode,
    Operation,
    PaymentRequest,
    ProcessingResponse,
    RefundRequest,
    RequestBase,
    ResponseCheque,
    ResponseLine,
    encode,
)
from sandbox import ledger
from sandbox.answers import BadRequest, Outcome, Refusal, bad_request
from sandbox.goods import Catalogue
from sandbox.pricing import Pricing, cheque_total, response_cheque
from sandbox.rules import CENT, Rules, allocate, apply_cashback, from_cents, to_cents
from sandbox.stats import Stats
from sandbox.store import Store

OK = ErrorCode.OK.value


@dataclass(frozen=True)
class Step:
    """Where a request lands: the step's open transaction, the register and the path ids."""

    db: sqlite3.Connection
    register: str
    purchase_id: str | None
    operation_id: str | None  # from the path: only cancel-operation names one there


Route = Callable[[Step, Any], ProcessingResponse]


class Operations:
    def __init__(self, store: Store, rules: Rules, catalogue: Catalogue, stats: Stats) -> None:
        self.store = store
        self.rules = rules
        self.stats = stats
        self.pricing = Pricing(rules, catalogue, stats)
        # each handler takes only what it reads; the table adapts the one call shape to theirs.
        # `req` is Any here: the front validated it with REQUEST_MODELS[op], the handler's model
        self._routes: dict[Operation, Route] = {
            Operation.BALANCE: lambda s, req: self.balance(s.db, req),
            Operation.CALCULATE: lambda s, req: self.calculate(
                s.db, s.register, s.purchase_id, req
            ),
            Operation.AVAILABLE: lambda s, req: self.available(
                s.db, s.register, s.purchase_id, req
            ),
            Operation.DISCOUNT: lambda s, req: self.discount(s.db, s.register, s.purchase_id, req),
            Operation.PAYMENT: lambda s, req: self.payment(s.db, s.register, s.purchase_id, req),
            Operation.CANCEL_OPERATION: lambda s, _: self.cancel_operation(
                s.db, s.register, s.purchase_id, s.operation_id
            ),
            Operation.CONFIRM: lambda s, _: self.confirm(s.db, s.register, s.purchase_id),
            Operation.CANCEL: lambda s, _: self.cancel(s.db, s.register, s.purchase_id),
            Operation.REFUND: lambda s, req: self.refund(s.db, s.register, s.purchase_id, req),
        }

    def execute(
        self,
        register: str,
        op: Operation,
        purchase_id: str | None,
        path_operation_id: str | None,
        req: RequestBase,
    ) -> Outcome:
        key = f"{op.value}|{purchase_id or ''}|{path_operation_id or ''}"
        try:
            with self.store.transaction() as db:
                row = db.execute(
                    "SELECT key, response FROM operations WHERE register=? AND operation_id=?",
                    (register, req.operation_id),
                ).fetchone()
                if row is not None:
                    if row["key"] == key:
                        self.stats.duplicate()
                        return Outcome(200, OK, bytes(row["response"]), True)
                    done = row["key"].split("|")
                    raise Refusal(
                        ErrorCode.NOT_UNIQUE_OPERATION_ID,
                        f"operationId {req.operation_id} was already used by this register for "
                        f"{done[0]} of purchase {done[1] or '-'}",
                    )
                response = self._routes[op](Step(db, register, purchase_id, path_operation_id), req)
                transaction_id = uuid.uuid4().hex
                response = response.model_copy(
                    update={"operation_id": req.operation_id, "transaction_id": transaction_id}
                )
                body = encode(response)
                db.execute(
                    "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?)",
                    (register, req.operation_id, key, purchase_id, transaction_id, body),
                )
                return Outcome(200, response.code, body)
        except Refusal as r:
            refused = ProcessingResponse(
                code=r.code.value,
                error_message=r.message,
                cashier_message=r.cashier,
                operation_id=req.operation_id,
            )
            return Outcome(200, r.code.value, encode(refused))
        except BadRequest as exc:
            return bad_request(str(exc))

    # ------------------------------------------------------------------ the nine

    def balance(self, db: sqlite3.Connection, req: BalanceRequest) -> ProcessingResponse:
        card = ledger.find_card(db, req.identifier)
        if card is None:
            raise Refusal(ErrorCode.CARD_NOT_FOUND, "balance needs an identifier", "Card not found")
        return ProcessingResponse(code=OK, balance=ledger.balance(db, card.number))

    def calculate(
        self, db: sqlite3.Connection, register: str, pid: str | None, req: CalculateRequest
    ) -> ProcessingResponse:
        """A preview: prices the cheque and places what bonuses would pay, holding nothing."""
        card = ledger.find_card(db, req.identifier)
        _, card = ledger.sale(db, register, pid, card, req, create=True)
        lines = self.pricing.price(req.cheque, req.operation_date)
        total = cheque_total(lines)
        held = ledger.held_redemption(db, pid)
        available = self.pricing.available(db, card, total, held)
        if card is not None:
            wanted = min(req.payment_amount or Decimal(0), available)
            for line, share in zip(
                lines,
                allocate(min(held + wanted, total), [x.after_discount for x in lines]),
                strict=True,
            ):
                line.redeemed = share
            apply_cashback(self.rules, lines, req.operation_date)
        return ProcessingResponse(
            code=OK,
            cheque=response_cheque(lines),
            available_amount=available,
            available_bonus_amount=self.rules.bonuses(available),
            balance=None if card is None else ledger.balance(db, card.number),
        )

    def available(
        self, db: sqlite3.Connection, register: str, pid: str | None, req: AvailableRequest
    ) -> ProcessingResponse:
        """What bonuses may pay; it creates no purchase, so a register may ask at any time."""
        card = ledger.find_card(db, req.identifier)
        _, card = ledger.sale(db, register, pid, card, req, create=False)
        lines = self.pricing.price(req.cheque, req.operation_date)
        total = cheque_total(lines)
        available = self.pricing.available(db, card, total, ledger.held_redemption(db, pid))
        return ProcessingResponse(
            code=OK,
            available_amount=available,
            available_bonus_amount=self.rules.bonuses(available),
            balance=None if card is None else ledger.balance(db, card.number),
        )

    def payment(
        self, db: sqlite3.Connection, register: str, pid: str | None, req: PaymentRequest
    ) -> ProcessingResponse:
        """Holds bonuses against the cheque: spent only when the purchase is confirmed."""
        if req.amount != req.amount.quantize(CENT):
            raise BadRequest(f"amount: {req.amount} has more than 2 decimals")
        card = ledger.find_card(db, req.identifier)
        row, card = ledger.sale(db, register, pid, card, req, create=True)
        if card is None:
            raise Refusal(
                ErrorCode.CARD_NOT_FOUND, "payment with bonuses needs a card", "Card not found"
            )
        if card.state != "active":
            raise Refusal(
                ErrorCode.CARD_NOT_ACTIVATED,
                "the card is not activated: bonuses cannot be spent",
                "Card is not activated",
            )
        if row is None:  # a real check: asserts vanish under python -O
            raise RuntimeError(f"purchase {pid} was created but cannot be read back")
        if row["status"] != "open":
            raise Refusal(
                ErrorCode.INCORRECT_OPERATION_ORDER,
                "payment after the final cheque (discount) was sent",
            )
        lines = self.pricing.price(req.cheque, req.operation_date)
        total = cheque_total(lines)
        held = ledger.held_redemption(db, pid)
        balance = ledger.balance(db, card.number)
        if req.amount > balance:
            raise Refusal(
                ErrorCode.NOT_ENOUGH_MONEY,
                f"{req.amount} requested, {balance} available on the card",
                "Not enough bonuses",
            )
        limit = self.rules.redemption_limit(total)
        if held + req.amount > limit:
            raise Refusal(
                ErrorCode.LARGE_PAYMENT_AMOUNT,
                f"at most {limit} of this cheque may be paid with bonuses, {held} already held",
                f"At most {max(limit - held, Decimal(0))} may be paid with bonuses",
            )
        ledger.add_entry(db, card.number, pid, req, "redemption", -to_cents(req.amount), "held")
        return ProcessingResponse(
            code=OK,
            amount=req.amount,
            bonus_amount=self.rules.bonuses(req.amount),
            balance=ledger.balance(db, card.number),
        )

    def discount(
        self, db: sqlite3.Connection, register: str, pid: str | None, req: DiscountRequest
    ) -> ProcessingResponse:
        """The final cheque: fixes lines and holds the accrual; a resend replaces both."""
        card = ledger.find_card(db, req.identifier)
        _, card = ledger.sale(db, register, pid, card, req, create=True)
        lines = self.pricing.price(req.cheque, req.operation_date)
        total = cheque_total(lines)
        redeemed = ledger.held_redemption(db, pid)
        if redeemed > total:
            raise Refusal(
                ErrorCode.DIFFERENT_CHEQUE,
                f"the cheque total {total} is below the {redeemed} already paid with bonuses",
            )
        for line, share in zip(
            lines, allocate(redeemed, [x.after_discount for x in lines]), strict=True
        ):
            line.redeemed = share
        accrued = Decimal("0.00")
        if card is not None:
            accrued = apply_cashback(self.rules, lines, req.operation_date)
        db.execute(
            "UPDATE entries SET status='released' "
            "WHERE purchase_id=? AND kind='accrual' AND status='held'",
            (pid,),
        )
        if card is not None and accrued > 0:
            ledger.add_entry(db, card.number, pid, req, "accrual", to_cents(accrued), "held")
        stored = [
            {
                "position": x.position,
                "goodsId": x.goods_id,
                "group": x.group,
                "quantity": str(x.quantity),
                "amount": to_cents(x.after_discount),
                "discount": to_cents(x.discount),
                "redeemed": to_cents(x.redeemed),
                "cashback": to_cents(x.cashback),
                "refundedQuantity": "0",
                "refundedAmount": 0,
                "refundedRedeemed": 0,
                "refundedCashback": 0,
            }
            for x in lines
        ]
        db.execute(
            "UPDATE purchases SET status='discounted', total_cents=?, discount_cents=?, lines=?, "
            "operation_date=? WHERE purchase_id=?",
            (
                to_cents(total),
                to_cents(sum((x.discount for x in lines), Decimal(0))),
                json.dumps(stored),
                ledger.when(req),
                pid,
            ),
        )
        return ProcessingResponse(
            code=OK,
            cheque=response_cheque(lines),
            accrued_amount=accrued,
            balance=None if card is None else ledger.balance(db, card.number),
        )

    def confirm(self, db: sqlite3.Connection, register: str, pid: str | None) -> ProcessingResponse:
        """Makes the purchase's held entries final: the accrual becomes spendable."""
        row = ledger.own(db, register, pid)
        if row["kind"] == "refund":  # refunds are final at once; confirming one changes nothing
            return ProcessingResponse(code=OK, balance=ledger.balance_of(db, row["card"]))
        ledger.check_unconfirmed(row)
        if row["status"] != "discounted":
            raise Refusal(
                ErrorCode.INCORRECT_OPERATION_ORDER,
                f"purchase {pid} has no final cheque (discount) to confirm",
            )
        (accrued,) = db.execute(
            "SELECT COALESCE(SUM(cents), 0) FROM entries WHERE purchase_id=? AND kind='accrual' "
            "AND status='held'",
            (pid,),
        ).fetchone()
        db.execute(
            "UPDATE entries SET status='final' WHERE purchase_id=? AND status='held'", (pid,)
        )
        db.execute("UPDATE purchases SET status='confirmed' WHERE purchase_id=?", (pid,))
        return ProcessingResponse(
            code=OK,
            accrued_amount=from_cents(int(accrued)),
            balance=ledger.balance_of(db, row["card"]),
        )

    def cancel(self, db: sqlite3.Connection, register: str, pid: str | None) -> ProcessingResponse:
        """Releases everything the unconfirmed purchase held."""
        row = ledger.own(db, register, pid)
        ledger.check_unconfirmed(row)
        db.execute(
            "UPDATE entries SET status='released' WHERE purchase_id=? AND status='held'", (pid,)
        )
        db.execute("UPDATE purchases SET status='canceled' WHERE purchase_id=?", (pid,))
        return ProcessingResponse(code=OK, balance=ledger.balance_of(db, row["card"]))

    def cancel_operation(
        self, db: sqlite3.Connection, register: str, pid: str | None, opid: str | None
    ) -> ProcessingResponse:
        """Gives back one payment's bonuses, only while the cheque is still open."""
        row = ledger.own(db, register, pid)
        ledger.check_unconfirmed(row)
        entry = db.execute(
            "SELECT id, cents, status FROM entries WHERE purchase_id=? AND operation_id=? "
            "AND kind='redemption'",
            (pid, opid),
        ).fetchone()
        if entry is None:
            raise Refusal(ErrorCode.OPERATION_NOT_FOUND, f"no payment {opid} in purchase {pid}")
        if entry["status"] == "released":
            raise Refusal(ErrorCode.OPERATION_IS_CANCELED, f"payment {opid} was already canceled")
        if row["status"] != "open":
            raise Refusal(
                ErrorCode.INCORRECT_OPERATION_ORDER,
                "the final cheque (discount) was already sent: cancel the purchase instead",
            )
        db.execute("UPDATE entries SET status='released' WHERE id=?", (entry["id"],))
        returned = from_cents(-entry["cents"])
        return ProcessingResponse(
            code=OK,
            amount=returned,
            bonus_amount=self.rules.bonuses(returned),
            balance=ledger.balance_of(db, row["card"]),
        )

    def refund(
        self, db: sqlite3.Connection, register: str, pid: str | None, req: RefundRequest
    ) -> ProcessingResponse:
        """Takes back accrual and gives back bonuses in proportion to what is returned."""
        if ledger.purchase(db, pid) is not None:
            raise Refusal(ErrorCode.NOT_UNIQUE_PURCHASE_ID, f"purchaseId {pid} is already used")
        if req.refund_purchase_id:
            original = ledger.purchase(db, req.refund_purchase_id)
        elif req.refund_transaction_id:
            found = db.execute(
                "SELECT purchase_id FROM operations WHERE transaction_id=?",
                (req.refund_transaction_id,),
            ).fetchone()
            original = None if found is None else ledger.purchase(db, found["purchase_id"])
        else:
            raise BadRequest("refund needs refundPurchaseId or refundTransactionId")
        if original is None or original["kind"] != "sale":
            raise Refusal(ErrorCode.PURCHASE_NOT_FOUND, "the purchase to refund is not known")
        if original["status"] == "refunded":
            raise Refusal(ErrorCode.LIMIT_GAINED, "the purchase was already refunded in full")
        if original["status"] != "confirmed" and original["status"] != "partially_refunded":
            raise Refusal(
                ErrorCode.INCORRECT_OPERATION_ORDER,
                f"only a confirmed purchase can be refunded; it is {original['status']}",
            )
        stored = json.loads(original["lines"])
        by_position = {x["position"]: x for x in stored}
        seen: set[int] = set()
        out: list[ResponseLine] = []
        take_back = give_back = refunded_money = 0
        for i, line in enumerate(req.cheque.lines):
            orig = by_position.get(line.position)
            if orig is None or orig["goodsId"] != line.goods_id:
                raise Refusal(
                    ErrorCode.DIFFERENT_CHEQUE,
                    f"cheque.lines.{i}: position {line.position} ({line.goods_id}) "
                    "is not in the purchase",
                )
            if line.position in seen:
                raise BadRequest(f"cheque.lines.{i}.position: {line.position} appears twice")
            seen.add(line.position)
            bought = Decimal(orig["quantity"])
            done = Decimal(orig["refundedQuantity"])
            if done + line.quantity > bought:
                raise Refusal(
                    ErrorCode.LIMIT_GAINED,
                    f"cheque.lines.{i}: {line.quantity} returned, only {bought - done} of position "
                    f"{line.position} left to refund",
                )
            full = done + line.quantity == bought

            cashback, redeemed, amount = (
                _share(orig, key, line.quantity / bought, full)
                for key in ("cashback", "redeemed", "amount")
            )
            orig["refundedQuantity"] = str(done + line.quantity)
            orig["refundedCashback"] += cashback
            orig["refundedRedeemed"] += redeemed
            orig["refundedAmount"] += amount
            take_back += cashback
            give_back += redeemed
            refunded_money += amount - redeemed
            out.append(
                ResponseLine(
                    position=line.position,
                    amount=from_cents(amount),
                    cashback=from_cents(-cashback),
                    pay_amount=from_cents(amount - redeemed),
                )
            )
        fully = all(Decimal(x["refundedQuantity"]) >= Decimal(x["quantity"]) for x in stored)
        db.execute(
            "UPDATE purchases SET lines=?, status=? WHERE purchase_id=?",
            (
                json.dumps(stored),
                "refunded" if fully else "partially_refunded",
                original["purchase_id"],
            ),
        )
        db.execute(
            "INSERT INTO purchases (purchase_id, register, card, kind, status, refund_of, "
            "total_cents, operation_date) VALUES (?, ?, ?, 'refund', 'confirmed', ?, ?, ?)",
            (
                pid,
                register,
                original["card"],
                original["purchase_id"],
                refunded_money,
                ledger.when(req),
            ),
        )
        card = original["card"]
        if card is not None:
            for kind, cents in (("refund_accrual", -take_back), ("refund_redemption", give_back)):
                if cents:
                    ledger.add_entry(db, card, pid, req, kind, cents, "final")
        return ProcessingResponse(
            code=OK,
            cheque=ResponseCheque(
                total_amount=from_cents(refunded_money),
                total_cashback=from_cents(-take_back),
                lines=out,
            ),
            accrued_amount=from_cents(-take_back),
            amount=from_cents(give_back),
            bonus_amount=self.rules.bonuses(from_cents(give_back)),
            balance=ledger.balance_of(db, card),
        )


def _share(orig: dict[str, Any], key: str, fraction: Decimal, last: bool) -> int:
    """Cents of a stored line's `key` that a refund of `fraction` of it returns.

    The refund that returns the last of a line takes exactly what is left, so partial
    refunds can never add up to more (or less) than the line had.
    """
    whole = int(orig[key])
    already = int(orig["refunded" + key[0].upper() + key[1:]])
    if last:
        return whole - already
    return int((Decimal(whole) * fraction).to_integral_value(rounding=ROUND_HALF_UP))
