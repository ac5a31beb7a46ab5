"""Loyalty rules of the sandbox: catalogue groups, accrual rates, timed offers, pricing.

Pure functions over Decimal so the arithmetic can be checked apart from HTTP and SQLite.
Offers are matched on the register's local `operationDate`: a sandbox that looked at its
own clock would hide exactly the time-zone and offline-replay bugs it exists to expose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
DEFAULT_GROUP = "default"


class SeedError(ValueError):
    """The seed file (or the rules stored from it) is not usable."""


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(value: Decimal) -> int:
    return int((value * HUNDRED).to_integral_value(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / HUNDRED).quantize(CENT)


def seed_decimal(raw: Any, what: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise SeedError(f"{what}: {raw!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise SeedError(f"{what}: {raw!r} must be a finite number >= 0")
    return value


def _clock(raw: Any, what: str) -> time:
    try:
        return time.fromisoformat(str(raw))
    except ValueError:
        raise SeedError(f"{what}: {raw!r} is not a time of day like 22:00") from None


@dataclass(frozen=True)
class Window:
    """[start, end) in local wall-clock time; start > end crosses midnight."""

    start: time
    end: time

    def contains(self, when: datetime) -> bool:
        t = when.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True)
class Offer:
    name: str
    kind: str  # "discount" | "multiplier"
    window: Window
    group: str | None = None
    percent: Decimal = Decimal(0)
    factor: Decimal = Decimal(1)

    def applies(self, group: str, when: datetime) -> bool:
        return (self.group is None or self.group == group) and self.window.contains(when)


@dataclass(frozen=True)
class Rules:
    bonus_value: Decimal = Decimal("1.00")
    redemption_limit_percent: Decimal = Decimal(50)
    accrual_default: Decimal = Decimal(1)
    accrual_groups: Mapping[str, Decimal] = field(default_factory=dict)
    offers: Sequence[Offer] = ()

    @classmethod
    def from_seed(cls, seed: Mapping[str, Any]) -> Rules:
        rules = seed.get("rules", {})
        accrual = seed.get("accrual", {})
        offers = []
        for i, raw in enumerate(seed.get("offers", [])):
            what = f"offers[{i}]"
            kind = raw.get("kind")
            if kind not in ("discount", "multiplier"):
                raise SeedError(f"{what}.kind must be 'discount' or 'multiplier', not {kind!r}")
            offers.append(
                Offer(
                    name=str(raw.get("name", what)),
                    kind=kind,
                    window=Window(
                        _clock(raw.get("from", "00:00"), f"{what}.from"),
                        _clock(raw.get("to", "00:00"), f"{what}.to"),
                    ),
                    group=raw.get("group"),
                    percent=seed_decimal(raw.get("percent", 0), f"{what}.percent"),
                    factor=seed_decimal(raw.get("factor", 1), f"{what}.factor"),
                )
            )
        groups = {
            str(k): seed_decimal(v, f"accrual.groups.{k}")
            for k, v in accrual.get("groups", {}).items()
        }
        bonus_value = seed_decimal(rules.get("bonus_value", "1.00"), "rules.bonus_value")
        if bonus_value == 0:
            raise SeedError("rules.bonus_value must be above 0")
        return cls(
            bonus_value=bonus_value,
            redemption_limit_percent=seed_decimal(
                rules.get("redemption_limit_percent", 50), "rules.redemption_limit_percent"
            ),
            accrual_default=seed_decimal(accrual.get("default", 1), "accrual.default"),
            accrual_groups=groups,
            offers=tuple(offers),
        )

    def to_seed(self) -> dict[str, Any]:
        """The inverse of from_seed, stored in the database so a restart keeps the same rules."""
        return {
            "rules": {
                "bonus_value": str(self.bonus_value),
                "redemption_limit_percent": str(self.redemption_limit_percent),
            },
            "accrual": {
                "default": str(self.accrual_default),
                "groups": {k: str(v) for k, v in self.accrual_groups.items()},
            },
            "offers": [
                {
                    "name": o.name,
                    "kind": o.kind,
                    "from": o.window.start.isoformat(),
                    "to": o.window.end.isoformat(),
                    "percent": str(o.percent),
                    "factor": str(o.factor),
                    **({"group": o.group} if o.group is not None else {}),
                }
                for o in self.offers
            ],
        }

    # ------------------------------------------------------------------ pricing

    def discount_percent(self, group: str, when: datetime) -> Decimal:
        return sum(
            (o.percent for o in self.offers if o.kind == "discount" and o.applies(group, when)),
            Decimal(0),
        )

    def accrual_percent(self, group: str, when: datetime) -> Decimal:
        rate = self.accrual_groups.get(group, self.accrual_default)
        for o in self.offers:
            if o.kind == "multiplier" and o.applies(group, when):
                rate *= o.factor
        return rate

    def redemption_limit(self, total: Decimal) -> Decimal:
        """Money that may be paid with bonuses on a cheque of `total` (rounded down to cents)."""
        return (total * self.redemption_limit_percent / HUNDRED).quantize(CENT, rounding=ROUND_DOWN)

    def bonuses(self, amount: Decimal) -> Decimal:
        return (amount / self.bonus_value).quantize(CENT, rounding=ROUND_DOWN)


@dataclass
class PricedLine:
    position: int
    goods_id: str
    group: str
    quantity: Decimal
    amount: Decimal  # as sent by the register
    discount: Decimal  # direct discount of an offer
    redeemed: Decimal = Decimal(0)  # share of the redeemed bonuses (money)
    cashback: Decimal = Decimal(0)

    @property
    def after_discount(self) -> Decimal:
        return self.amount - self.discount

    @property
    def pay_amount(self) -> Decimal:
        return self.after_discount - self.redeemed


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` in cents over `weights` proportionally; the parts sum to `total` exactly."""
    cents = to_cents(total)
    whole = sum(weights, Decimal(0))
    if cents == 0 or whole == 0:
        return [Decimal(0)] * len(weights)
    raw = [Decimal(cents) * w / whole for w in weights]
    parts = [int(r.to_integral_value(rounding=ROUND_DOWN)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (parts[i] - raw[i], i))
    for i in order[: cents - sum(parts)]:
        parts[i] += 1
    return [from_cents(p) for p in parts]


def apply_cashback(rules: Rules, lines: Sequence[PricedLine], when: datetime) -> Decimal:
    """Accrual on the money actually paid per line; returns the cheque's total cashback."""
    total = Decimal(0)
    for line in lines:
        rate = rules.accrual_percent(line.group, when)
        line.cashback = round_cents(max(line.pay_amount, Decimal(0)) * rate / HUNDRED)
        total += line.cashback
    return total
