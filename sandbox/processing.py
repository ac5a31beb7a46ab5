"""The nine contract operations and the catalogue upload, over the sandbox database.

Every operation runs in one SQLite transaction: a business refusal rolls back whatever the
handler had written, so a refused step leaves no trace.  Only successful steps are stored
under (register, operationId); a retry of a stored step gets the stored response back,
byte for byte, and changes nothing — that is what lets a register replay a journal safely.

Ledger (per card, integer cents, signed): `opening`, `accrual` (+), `redemption` (-),
`refund_accrual` (-, accrual taken back), `refund_redemption` (+, bonuses given back).
Each entry is `held` (purchase not confirmed yet), `final` or `released` (canceled).
The balance reported to registers is the spendable one: final entries plus held
redemptions (a hold already reduces what can be spent; a held accrual does not add yet).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import ValidationError
from stdnum import ean

from bridge.loyalty.protocol import (
    CARD_BLOCKED_TEXT,
    GOODS_IMPORT_CHUNK,
    AvailableRequest,
    CalculateRequest,
    CancelOperationRequest,
    CancelRequest,
    Cheque,
    ConfirmRequest,
    DiscountRequest,
    ErrorCode,
    GoodsImportRequest,
    GoodsImportResponse,
    GoodsItem,
    GoodsRejection,
    Identifier,
    Operation,
    PaymentRequest,
    ProcessingResponse,
    RefundRequest,
    RequestBase,
    ResponseCheque,
    ResponseLine,
    dumps,
    encode,
    mask_card,
)
from sandbox.rules import (
    CENT,
    DEFAULT_GROUP,
    PricedLine,
    allocate,
    apply_cashback,
    from_cents,
    money,
    to_cents,
)
from sandbox.stats import Stats
from sandbox.store import Store, password_digest

log = logging.getLogger(__name__)

QUANTITY_PLACES = Decimal("0.001")
CONFIRMED_STATES = ("confirmed", "partially_refunded", "refunded")


Handler = Callable[[sqlite3.Connection, str, str | None, str | None, Any, str], ProcessingResponse]
"""(db, register, purchaseId, operationId in the path, request, transactionId) -> response"""


class Refusal(Exception):
    """A business outcome other than Ok: HTTP 200 with this code."""

    def __init__(self, code: ErrorCode, message: str, cashier: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cashier = cashier


class BadRequest(Exception):
    """The request cannot be understood: HTTP 400."""


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str
    body: bytes
    duplicate: bool = False


@dataclass(frozen=True)
class Card:
    number: str
    state: str


def describe(exc: ValidationError, root: str = "") -> str:
    """A pydantic error as one line naming each bad field, e.g. `cheque.lines.0.amount: ...`."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join([root, *(str(p) for p in err["loc"])]).strip(".") or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def error_body(message: str) -> bytes:
    return dumps({"code": ErrorCode.SYSTEM_ERROR.value, "errorMessage": message})


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _line_view(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored cheque line with cents and quantity strings as JSON numbers."""
    return {
        k: from_cents(v)
        if isinstance(v, int) and k != "position"
        else Decimal(v)
        if k in ("quantity", "refundedQuantity")
        else v
        for k, v in stored.items()
    }


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


def _add_entry(
    db: sqlite3.Connection,
    card: str,
    purchase_id: str | None,
    req: RequestBase,
    kind: str,
    cents: int,
    status: str,
) -> None:
    db.execute(
        "INSERT INTO entries (card, purchase_id, operation_id, kind, cents, status, "
        "operation_date) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (card, purchase_id, req.operation_id, kind, cents, status, _when(req)),
    )


def _when(req: RequestBase) -> str:
    return req.operation_date.isoformat(timespec="seconds")


class Processing:
    def __init__(self, store: Store, stats: Stats) -> None:
        self.store = store
        self.stats = stats
        self.rules = store.rules()
        with store.lock:
            self.goods: dict[str, str] = {
                r["goods_id"]: r["grp"]
                for r in store.conn.execute("SELECT goods_id, grp FROM goods")
            }
            self.registers: dict[str, tuple[str, str]] = {
                r["login"]: (r["password_sha256"], r["status"])
                for r in store.conn.execute("SELECT * FROM registers")
            }
        self._handlers: dict[Operation, Handler] = {
            Operation.BALANCE: self._balance_op,
            Operation.CALCULATE: self._calculate,
            Operation.AVAILABLE: self._available_op,
            Operation.DISCOUNT: self._discount,
            Operation.PAYMENT: self._payment,
            Operation.CANCEL_OPERATION: self._cancel_operation,
            Operation.CONFIRM: self._confirm,
            Operation.CANCEL: self._cancel,
            Operation.REFUND: self._refund,
        }

    # ------------------------------------------------------------------ entry points

    def register_status(self, login: str, password: str) -> str | None:
        """'active'/'blocked' for good credentials, None otherwise."""
        known = self.registers.get(login)
        if known is None:
            password_digest(login, password)  # same work either way
            return None
        if not hmac.compare_digest(known[0], password_digest(login, password)):
            return None
        return known[1]

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
                        return Outcome(200, ErrorCode.OK.value, bytes(row["response"]), True)
                    done = row["key"].split("|")
                    raise Refusal(
                        ErrorCode.NOT_UNIQUE_OPERATION_ID,
                        f"operationId {req.operation_id} was already used by this register for "
                        f"{done[0]} of purchase {done[1] or '-'}",
                    )
                transaction_id = uuid.uuid4().hex
                response = self._handlers[op](
                    db, register, purchase_id, path_operation_id, req, transaction_id
                )
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
            return Outcome(400, ErrorCode.SYSTEM_ERROR.value, error_body(str(exc)))

    def import_goods(self, payload: Any) -> Outcome:
        """Apply a catalogue chunk at once.

        Real processing applies uploads in the background, possibly hours later; the sandbox
        does not imitate that lag, so a test can price new goods right after uploading them.
        Items are validated one by one so a bad item is rejected alone, by name.
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("goods"), list):
            return Outcome(
                400, "SystemError", error_body("body must be an object with a 'goods' list")
            )
        items = payload["goods"]
        if len(items) > GOODS_IMPORT_CHUNK:
            return Outcome(
                400,
                "SystemError",
                error_body(f"goods: {len(items)} items, at most {GOODS_IMPORT_CHUNK} per request"),
            )
        valid: list[GoodsItem] = []
        rejected: list[GoodsRejection] = []
        seen: set[str] = set()
        for i, raw in enumerate(items):
            gid = raw.get("goodsId") if isinstance(raw, dict) else None
            gid_text = str(gid) if gid is not None else None
            try:
                item = GoodsItem.model_validate(raw)
            except ValidationError as exc:
                rejected.append(
                    GoodsRejection(goods_id=gid_text, error=describe(exc, f"goods[{i}]"))
                )
                continue
            error = None
            if item.goods_id in seen:
                error = "duplicate goodsId in this upload"
            elif item.barcode is not None and not ean.is_valid(item.barcode):
                error = f"barcode {item.barcode!r} is not a valid EAN/GTIN (check digit)"
            elif item.price is not None and item.price != item.price.quantize(CENT):
                error = f"price {item.price} has more than 2 decimals"
            if error:
                rejected.append(
                    GoodsRejection(goods_id=item.goods_id, error=f"goods[{i}]: {error}")
                )
                continue
            seen.add(item.goods_id)
            valid.append(item)
        try:
            request = GoodsImportRequest.model_validate({**payload, "goods": valid})
        except ValidationError as exc:
            return Outcome(400, "SystemError", error_body(describe(exc)))
        if request.replace and rejected and not valid:
            # a replace in which nothing survived validation must not empty the catalogue
            return Outcome(
                200,
                "Ok",
                encode(
                    GoodsImportResponse(
                        code="Ok",
                        error_message="nothing accepted: the catalogue was not replaced",
                        rejected=rejected,
                    )
                ),
            )
        with self.store.transaction() as db:
            if request.replace:
                db.execute("DELETE FROM goods")
            db.executemany(
                "INSERT OR REPLACE INTO goods VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        g.goods_id,
                        g.barcode,
                        g.name,
                        g.group or DEFAULT_GROUP,
                        None if g.price is None else to_cents(g.price),
                    )
                    for g in request.goods
                ],
            )
            goods = {} if request.replace else dict(self.goods)
            goods.update({g.goods_id: g.group or DEFAULT_GROUP for g in request.goods})
            self.goods = goods
        response = GoodsImportResponse(code="Ok", accepted=len(valid), rejected=rejected)
        return Outcome(200, "Ok", encode(response))

    # ------------------------------------------------------------------ admin views

    def ledger(self, card: str) -> dict[str, Any] | None:
        with self.store.lock:
            db = self.store.conn
            if db.execute("SELECT 1 FROM cards WHERE number=?", (card,)).fetchone() is None:
                return None
            rows = db.execute("SELECT * FROM entries WHERE card=? ORDER BY id", (card,)).fetchall()
        sums: dict[tuple[str, str], int] = {}
        for r in rows:
            sums[(r["kind"], r["status"])] = sums.get((r["kind"], r["status"]), 0) + r["cents"]

        def total(kind: str, status: str = "final") -> Decimal:
            return from_cents(abs(sums.get((kind, status), 0)))

        balance = sum(c for (k, s), c in sums.items() if s == "final" or (s == "held" and c < 0))
        return {
            "card": card,
            "balance": from_cents(balance),
            "opening": total("opening"),
            "accrued": total("accrual"),
            "redeemed": total("redemption"),
            "refunded": total("refund_redemption"),
            "reversed": total("refund_accrual"),
            "held": total("redemption", "held"),
            "pendingAccrual": total("accrual", "held"),
            "entries": [
                {
                    "purchaseId": r["purchase_id"],
                    "operationId": r["operation_id"],
                    "kind": r["kind"],
                    "amount": from_cents(r["cents"]),
                    "status": r["status"],
                    "operationDate": r["operation_date"],
                }
                for r in rows
            ],
        }

    def inventory(self) -> dict[str, Any]:
        """Registers and cards, for the operator starting the sandbox by hand."""
        with self.store.lock:
            db = self.store.conn
            cards = [
                {
                    "number": r["number"],
                    "state": r["state"],
                    "balance": self._balance(db, r["number"]),
                    "phones": [
                        "+" + p["phone"]
                        for p in db.execute("SELECT phone FROM phones WHERE card=?", (r["number"],))
                    ],
                }
                for r in db.execute("SELECT number, state FROM cards ORDER BY number").fetchall()
            ]
        registers = [{"login": k, "status": v[1]} for k, v in sorted(self.registers.items())]
        return {"registers": registers, "cards": cards, "goods": len(self.goods)}

    def purchase_view(self, purchase_id: str) -> dict[str, Any] | None:
        with self.store.lock:
            db = self.store.conn
            row = db.execute(
                "SELECT * FROM purchases WHERE purchase_id=?", (purchase_id,)
            ).fetchone()
            if row is None:
                return None
            entries = db.execute(
                "SELECT kind, status, SUM(cents) AS cents FROM entries WHERE purchase_id=? "
                "GROUP BY kind, status",
                (purchase_id,),
            ).fetchall()
            refunds = [
                r["purchase_id"]
                for r in db.execute(
                    "SELECT purchase_id FROM purchases WHERE refund_of=? ORDER BY rowid",
                    (purchase_id,),
                )
            ]
        amounts = {(e["kind"], e["status"]): from_cents(abs(e["cents"])) for e in entries}
        zero = Decimal("0.00")
        return {
            "purchaseId": row["purchase_id"],
            "register": row["register"],
            "card": row["card"],
            "kind": row["kind"],
            "status": row["status"],
            "refundOf": row["refund_of"],
            "refunds": refunds,
            "operationDate": row["operation_date"],
            "totalAmount": from_cents(row["total_cents"]),
            "totalDiscount": from_cents(row["discount_cents"]),
            "heldRedemption": amounts.get(("redemption", "held"), zero),
            "heldAccrual": amounts.get(("accrual", "held"), zero),
            "redeemed": amounts.get(("redemption", "final"), zero),
            "accrued": amounts.get(("accrual", "final"), zero),
            "lines": [_line_view(x) for x in json.loads(row["lines"])],
        }

    # ------------------------------------------------------------------ lookups

    def _card(self, db: sqlite3.Connection, ident: Identifier | None) -> Card | None:
        if ident is None:
            return None
        value = ident.value.strip()
        row = None
        if ident.type in ("CardNumber", "Auto"):
            row = db.execute("SELECT number, state FROM cards WHERE number=?", (value,)).fetchone()
        if row is None and ident.type in ("Phone", "Auto") and _digits(value):
            row = db.execute(
                "SELECT c.number, c.state FROM phones p JOIN cards c ON c.number = p.card "
                "WHERE p.phone=?",
                (_digits(value),),
            ).fetchone()
        if row is None:
            raise Refusal(
                ErrorCode.CARD_NOT_FOUND,
                f"no card for {ident.type} {mask_card(value)}",
                "Card not found",
            )
        return self._usable(Card(row["number"], row["state"]))

    def _card_by_number(self, db: sqlite3.Connection, number: str | None) -> Card | None:
        if number is None:
            return None
        row = db.execute("SELECT number, state FROM cards WHERE number=?", (number,)).fetchone()
        return None if row is None else self._usable(Card(row["number"], row["state"]))

    @staticmethod
    def _usable(card: Card) -> Card:
        if card.state == "blocked":
            raise Refusal(ErrorCode.CARD_BLOCKED, "the card is blocked", CARD_BLOCKED_TEXT)
        if card.state == "expired":
            raise Refusal(ErrorCode.CARD_EXPIRED, "the card has expired", "Card has expired")
        return card

    @staticmethod
    def _balance(db: sqlite3.Connection, card: str) -> Decimal:
        (cents,) = db.execute(
            "SELECT COALESCE(SUM(cents), 0) FROM entries WHERE card=? "
            "AND (status='final' OR (status='held' AND cents < 0))",
            (card,),
        ).fetchone()
        return from_cents(int(cents))

    @staticmethod
    def _held_redemption(db: sqlite3.Connection, purchase_id: str | None) -> Decimal:
        (cents,) = db.execute(
            "SELECT COALESCE(SUM(cents), 0) FROM entries "
            "WHERE purchase_id=? AND kind='redemption' AND status='held'",
            (purchase_id,),
        ).fetchone()
        return from_cents(-int(cents))

    @staticmethod
    def _purchase(db: sqlite3.Connection, purchase_id: str | None) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM purchases WHERE purchase_id=?", (purchase_id,)
        ).fetchone()
        return row

    @staticmethod
    def _check_unconfirmed(row: sqlite3.Row) -> None:
        if row["status"] in CONFIRMED_STATES:
            raise Refusal(
                ErrorCode.OPERATION_IS_CONFIRMED,
                f"purchase {row['purchase_id']} is already confirmed",
            )
        if row["status"] == "canceled":
            raise Refusal(
                ErrorCode.OPERATION_IS_CANCELED, f"purchase {row['purchase_id']} was canceled"
            )

    def _sale(
        self,
        db: sqlite3.Connection,
        register: str,
        purchase_id: str | None,
        card: Card | None,
        req: RequestBase,
        create: bool,
    ) -> tuple[sqlite3.Row | None, Card | None]:
        """The open sale `purchase_id` (created if asked) and the card it runs on."""
        row = self._purchase(db, purchase_id)
        if row is None:
            if create:
                db.execute(
                    "INSERT INTO purchases (purchase_id, register, card, kind, status, "
                    "operation_date) VALUES (?, ?, ?, 'sale', 'open', ?)",
                    (purchase_id, register, card.number if card else None, _when(req)),
                )
                row = self._purchase(db, purchase_id)
            return row, card
        if row["register"] != register or row["kind"] != "sale":
            raise Refusal(
                ErrorCode.NOT_UNIQUE_PURCHASE_ID,
                f"purchaseId {purchase_id} is already used by another register or a refund",
            )
        self._check_unconfirmed(row)
        if card is None:
            return row, self._card_by_number(db, row["card"])
        if row["card"] != card.number:
            # the cashier may present another card until bonuses were paid with the first
            if self._held_redemption(db, purchase_id) > 0:
                raise Refusal(
                    ErrorCode.DIFFERENT_CHEQUE,
                    f"bonuses of another card are already held for purchase {purchase_id}",
                )
            db.execute(
                "UPDATE entries SET status='released' WHERE purchase_id=? AND status='held'",
                (purchase_id,),
            )
            db.execute(
                "UPDATE purchases SET card=?, status='open' WHERE purchase_id=?",
                (card.number, purchase_id),
            )
            row = self._purchase(db, purchase_id)
        return row, card

    def _own(self, db: sqlite3.Connection, register: str, purchase_id: str | None) -> sqlite3.Row:
        row = self._purchase(db, purchase_id)
        if row is None or row["register"] != register:
            raise Refusal(
                ErrorCode.PURCHASE_NOT_FOUND, f"no purchase {purchase_id} of this register"
            )
        return row

    # ------------------------------------------------------------------ pricing

    def _price(self, cheque: Cheque, when: datetime) -> list[PricedLine]:
        lines = []
        seen: set[int] = set()
        for i, line in enumerate(cheque.lines):
            where = f"cheque.lines.{i}"
            if line.position in seen:
                raise BadRequest(f"{where}.position: {line.position} appears twice in the cheque")
            seen.add(line.position)
            for name, value in (
                ("price", line.price),
                ("amount", line.amount),
                ("discount", line.discount),
            ):
                if value is not None and value != value.quantize(CENT):
                    raise BadRequest(f"{where}.{name}: {value} has more than 2 decimals")
            if line.quantity != line.quantity.quantize(QUANTITY_PLACES):
                raise BadRequest(f"{where}.quantity: {line.quantity} has more than 3 decimals")
            group = self.goods.get(line.goods_id)
            if group is None:
                self.stats.unknown_goods_line(line.goods_id)
                group = DEFAULT_GROUP
            percent = self.rules.discount_percent(group, when)
            discount = min(money(line.amount * percent / 100), line.amount)
            lines.append(
                PricedLine(
                    line.position, line.goods_id, group, line.quantity, line.amount, discount
                )
            )
        return lines

    def _available(
        self, db: sqlite3.Connection, card: Card | None, total: Decimal, held: Decimal
    ) -> Decimal:
        if card is None or card.state != "active":
            return Decimal("0.00")
        limit = self.rules.redemption_limit(total) - held
        return max(Decimal("0.00"), min(limit, self._balance(db, card.number)))

    @staticmethod
    def _cheque(lines: list[PricedLine]) -> ResponseCheque:
        return ResponseCheque(
            total_amount=sum((x.after_discount for x in lines), Decimal(0)),
            total_discount=sum((x.discount for x in lines), Decimal(0)),
            total_cashback=sum((x.cashback for x in lines), Decimal(0)),
            lines=[
                ResponseLine(
                    position=x.position,
                    amount=x.after_discount,
                    discount=x.discount,
                    cashback=x.cashback,
                    pay_amount=x.pay_amount,
                )
                for x in lines
            ],
        )

    # ------------------------------------------------------------------ operations

    def _balance_op(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: Any,
        tx: str,
    ) -> ProcessingResponse:
        card = self._card(db, req.identifier)
        if card is None:
            raise Refusal(ErrorCode.CARD_NOT_FOUND, "balance needs an identifier", "Card not found")
        return ProcessingResponse(code="Ok", balance=self._balance(db, card.number))

    def _calculate(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: CalculateRequest,
        tx: str,
    ) -> ProcessingResponse:
        _, card = self._sale(db, register, pid, self._card(db, req.identifier), req, create=True)
        lines = self._price(req.cheque, req.operation_date)
        total = sum((x.after_discount for x in lines), Decimal(0))
        held = self._held_redemption(db, pid)
        available = self._available(db, card, total, held)
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
            code="Ok",
            cheque=self._cheque(lines),
            available_amount=available,
            available_bonus_amount=self.rules.bonuses(available),
            balance=None if card is None else self._balance(db, card.number),
        )

    def _available_op(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: AvailableRequest,
        tx: str,
    ) -> ProcessingResponse:
        _, card = self._sale(db, register, pid, self._card(db, req.identifier), req, create=False)
        lines = self._price(req.cheque, req.operation_date)
        total = sum((x.after_discount for x in lines), Decimal(0))
        available = self._available(db, card, total, self._held_redemption(db, pid))
        return ProcessingResponse(
            code="Ok",
            available_amount=available,
            available_bonus_amount=self.rules.bonuses(available),
            balance=None if card is None else self._balance(db, card.number),
        )

    def _payment(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: PaymentRequest,
        tx: str,
    ) -> ProcessingResponse:
        if req.amount != req.amount.quantize(CENT):
            raise BadRequest(f"amount: {req.amount} has more than 2 decimals")
        row, card = self._sale(db, register, pid, self._card(db, req.identifier), req, create=True)
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
        assert row is not None
        if row["status"] != "open":
            raise Refusal(
                ErrorCode.INCORRECT_OPERATION_ORDER,
                "payment after the final cheque (discount) was sent",
            )
        lines = self._price(req.cheque, req.operation_date)
        total = sum((x.after_discount for x in lines), Decimal(0))
        held = self._held_redemption(db, pid)
        balance = self._balance(db, card.number)
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
        _add_entry(db, card.number, pid, req, "redemption", -to_cents(req.amount), "held")
        return ProcessingResponse(
            code="Ok",
            amount=req.amount,
            bonus_amount=self.rules.bonuses(req.amount),
            balance=self._balance(db, card.number),
        )

    def _discount(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: DiscountRequest,
        tx: str,
    ) -> ProcessingResponse:
        _, card = self._sale(db, register, pid, self._card(db, req.identifier), req, create=True)
        lines = self._price(req.cheque, req.operation_date)
        total = sum((x.after_discount for x in lines), Decimal(0))
        redeemed = self._held_redemption(db, pid)
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
            _add_entry(db, card.number, pid, req, "accrual", to_cents(accrued), "held")
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
                _when(req),
                pid,
            ),
        )
        return ProcessingResponse(
            code="Ok",
            cheque=self._cheque(lines),
            accrued_amount=accrued,
            balance=None if card is None else self._balance(db, card.number),
        )

    def _confirm(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: ConfirmRequest,
        tx: str,
    ) -> ProcessingResponse:
        row = self._own(db, register, pid)
        if row["kind"] == "refund":  # refunds are final at once; confirming one changes nothing
            return ProcessingResponse(code="Ok", balance=self._balance_of(db, row["card"]))
        self._check_unconfirmed(row)
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
            code="Ok",
            accrued_amount=from_cents(int(accrued)),
            balance=self._balance_of(db, row["card"]),
        )

    def _balance_of(self, db: sqlite3.Connection, card: str | None) -> Decimal | None:
        return None if card is None else self._balance(db, card)

    def _cancel(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: CancelRequest,
        tx: str,
    ) -> ProcessingResponse:
        row = self._own(db, register, pid)
        self._check_unconfirmed(row)
        db.execute(
            "UPDATE entries SET status='released' WHERE purchase_id=? AND status='held'", (pid,)
        )
        db.execute("UPDATE purchases SET status='canceled' WHERE purchase_id=?", (pid,))
        return ProcessingResponse(code="Ok", balance=self._balance_of(db, row["card"]))

    def _cancel_operation(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: CancelOperationRequest,
        tx: str,
    ) -> ProcessingResponse:
        row = self._own(db, register, pid)
        self._check_unconfirmed(row)
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
            code="Ok",
            amount=returned,
            bonus_amount=self.rules.bonuses(returned),
            balance=self._balance_of(db, row["card"]),
        )

    def _refund(
        self,
        db: sqlite3.Connection,
        register: str,
        pid: str | None,
        opid: str | None,
        req: RefundRequest,
        tx: str,
    ) -> ProcessingResponse:
        if self._purchase(db, pid) is not None:
            raise Refusal(ErrorCode.NOT_UNIQUE_PURCHASE_ID, f"purchaseId {pid} is already used")
        if req.refund_purchase_id:
            original = self._purchase(db, req.refund_purchase_id)
        elif req.refund_transaction_id:
            found = db.execute(
                "SELECT purchase_id FROM operations WHERE transaction_id=?",
                (req.refund_transaction_id,),
            ).fetchone()
            original = None if found is None else self._purchase(db, found["purchase_id"])
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
            (pid, register, original["card"], original["purchase_id"], refunded_money, _when(req)),
        )
        card = original["card"]
        if card is not None:
            for kind, cents in (("refund_accrual", -take_back), ("refund_redemption", give_back)):
                if cents:
                    _add_entry(db, card, pid, req, kind, cents, "final")
        return ProcessingResponse(
            code="Ok",
            cheque=ResponseCheque(
                total_amount=from_cents(refunded_money),
                total_cashback=from_cents(-take_back),
                lines=out,
            ),
            accrued_amount=from_cents(-take_back),
            amount=from_cents(give_back),
            bonus_amount=self.rules.bonuses(from_cents(give_back)),
            balance=self._balance_of(db, card),
        )
