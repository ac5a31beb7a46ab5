"""Cards, purchases and bonus entries as the operations read and write them.

Ledger (per card, integer cents, signed): `opening`, `accrual` (+), `redemption` (-),
`refund_accrual` (-, accrual taken back), `refund_redemption` (+, bonuses given back).
Each entry is `held` (purchase not confirmed yet), `final` or `released` (canceled).
The balance reported to registers is the spendable one: final entries plus held
redemptions (a hold already reduces what can be spent; a held accrual does not add yet).

Every function takes the connection of the step's open transaction, so a refusal raised
here rolls back with everything else the step wrote.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from bridge.loyalty.protocol import (
    CARD_BLOCKED_TEXT,
    ErrorCode,
    Identifier,
    RequestBase,
    mask_card,
)
from sandbox.answers import Refusal
from sandbox.rules import from_cents

CONFIRMED_STATES = ("confirmed", "partially_refunded", "refunded")


@dataclass(frozen=True)
class Card:
    number: str
    state: str


def when(req: RequestBase) -> str:
    """The register's local operation time as stored: to the second, no offset."""
    return req.operation_date.isoformat(timespec="seconds")


def add_entry(
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
        (card, purchase_id, req.operation_id, kind, cents, status, when(req)),
    )


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def find_card(db: sqlite3.Connection, ident: Identifier | None) -> Card | None:
    """The usable card the register identified; None when it sent no identifier."""
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
    return usable(Card(row["number"], row["state"]))


def card_by_number(db: sqlite3.Connection, number: str | None) -> Card | None:
    if number is None:
        return None
    row = db.execute("SELECT number, state FROM cards WHERE number=?", (number,)).fetchone()
    return None if row is None else usable(Card(row["number"], row["state"]))


def usable(card: Card) -> Card:
    """The card, unless it may not be used at all; an inactive card may still be looked at."""
    if card.state == "blocked":
        raise Refusal(ErrorCode.CARD_BLOCKED, "the card is blocked", CARD_BLOCKED_TEXT)
    if card.state == "expired":
        raise Refusal(ErrorCode.CARD_EXPIRED, "the card has expired", "Card has expired")
    return card


def balance(db: sqlite3.Connection, card: str) -> Decimal:
    (cents,) = db.execute(
        "SELECT COALESCE(SUM(cents), 0) FROM entries WHERE card=? "
        "AND (status='final' OR (status='held' AND cents < 0))",
        (card,),
    ).fetchone()
    return from_cents(int(cents))


def balance_of(db: sqlite3.Connection, card: str | None) -> Decimal | None:
    """No balance in the answer for a purchase without a card."""
    return None if card is None else balance(db, card)


def held_redemption(db: sqlite3.Connection, purchase_id: str | None) -> Decimal:
    (cents,) = db.execute(
        "SELECT COALESCE(SUM(cents), 0) FROM entries "
        "WHERE purchase_id=? AND kind='redemption' AND status='held'",
        (purchase_id,),
    ).fetchone()
    return from_cents(-int(cents))


def purchase(db: sqlite3.Connection, purchase_id: str | None) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM purchases WHERE purchase_id=?", (purchase_id,)
    ).fetchone()
    return row


def check_unconfirmed(row: sqlite3.Row) -> None:
    if row["status"] in CONFIRMED_STATES:
        raise Refusal(
            ErrorCode.OPERATION_IS_CONFIRMED,
            f"purchase {row['purchase_id']} is already confirmed",
        )
    if row["status"] == "canceled":
        raise Refusal(
            ErrorCode.OPERATION_IS_CANCELED, f"purchase {row['purchase_id']} was canceled"
        )


def sale(
    db: sqlite3.Connection,
    register: str,
    purchase_id: str | None,
    card: Card | None,
    req: RequestBase,
    create: bool,
) -> tuple[sqlite3.Row | None, Card | None]:
    """The open sale `purchase_id` (created if asked) and the card it runs on."""
    row = purchase(db, purchase_id)
    if row is None:
        if create:
            db.execute(
                "INSERT INTO purchases (purchase_id, register, card, kind, status, "
                "operation_date) VALUES (?, ?, ?, 'sale', 'open', ?)",
                (purchase_id, register, card.number if card else None, when(req)),
            )
            row = purchase(db, purchase_id)
        return row, card
    if row["register"] != register or row["kind"] != "sale":
        raise Refusal(
            ErrorCode.NOT_UNIQUE_PURCHASE_ID,
            f"purchaseId {purchase_id} is already used by another register or a refund",
        )
    check_unconfirmed(row)
    if card is None:
        return row, card_by_number(db, row["card"])
    if row["card"] != card.number:
        # the cashier may present another card until bonuses were paid with the first
        if held_redemption(db, purchase_id) > 0:
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
        row = purchase(db, purchase_id)
    return row, card


def own(db: sqlite3.Connection, register: str, purchase_id: str | None) -> sqlite3.Row:
    """The purchase, if this register made it: another register's purchase is not found."""
    row = purchase(db, purchase_id)
    if row is None or row["register"] != register:
        raise Refusal(ErrorCode.PURCHASE_NOT_FOUND, f"no purchase {purchase_id} of this register")
    return row
