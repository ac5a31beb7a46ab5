"""A register's cheque priced by the sandbox's rules: discounts, what bonuses may pay, totals.

Apart from the operations because calculate, available, payment and discount all price the
same cheque the same way; a difference between them would be a bug a register could see.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal

from bridge.loyalty.protocol import QUANTITY_PLACES, Cheque, ResponseCheque, ResponseLine
from sandbox import ledger
from sandbox.answers import BadRequest
from sandbox.goods import Catalogue
from sandbox.rules import CENT, DEFAULT_GROUP, PricedLine, Rules, round_cents
from sandbox.stats import Stats


class Pricing:
    def __init__(self, rules: Rules, catalogue: Catalogue, stats: Stats) -> None:
        self.rules = rules
        self.catalogue = catalogue
        self.stats = stats

    def price(self, cheque: Cheque, when: datetime) -> list[PricedLine]:
        """Each line with its discount, at the register's local time (offers are timed)."""
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
            group = self.catalogue.group(line.goods_id)
            if group is None:
                self.stats.unknown_goods_line(line.goods_id)
                group = DEFAULT_GROUP
            percent = self.rules.discount_percent(group, when)
            discount = min(round_cents(line.amount * percent / 100), line.amount)
            lines.append(
                PricedLine(
                    line.position, line.goods_id, group, line.quantity, line.amount, discount
                )
            )
        return lines

    def available(
        self, db: sqlite3.Connection, card: ledger.Card | None, total: Decimal, held: Decimal
    ) -> Decimal:
        """What bonuses may still pay of a cheque of `total`, `held` already being held."""
        if card is None or card.state != "active":
            return Decimal("0.00")
        limit = self.rules.redemption_limit(total) - held
        return max(Decimal("0.00"), min(limit, ledger.balance(db, card.number)))


def response_cheque(lines: list[PricedLine]) -> ResponseCheque:
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


def cheque_total(lines: list[PricedLine]) -> Decimal:
    return sum((x.after_discount for x in lines), Decimal(0))
