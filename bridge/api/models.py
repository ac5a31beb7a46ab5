"""Request and response bodies of the POS API (camelCase on the wire, Decimal money).

A line's money must add up: processing accrues points on `amount`, so a line priced 1
with an amount of 1,000,000 would earn points on a million.  The rule, for the POS
integrator: amount = price x quantity - discount, to the cent.  The exact product has
up to 5 decimals; any amount within the cent around it is accepted (registers round
half up, half even or down), anything else is refused with 422 `amount_mismatch`.  An
omitted amount is computed, rounded half up as on a Russian fiscal receipt.  A cheque's
lines total at most 1e9.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from bridge.service.cheque import MAX_TOTAL

# the problem codes of the money rules (the problem's `code` when it is the only error)
MONEY_CODES = frozenset({"amount_mismatch", "discount_too_large", "total_too_large"})
CENT = Decimal("0.01")
MoneyIn = Annotated[Decimal, Field(ge=0, le=MAX_TOTAL, max_digits=14, decimal_places=2)]
QuantityIn = Annotated[Decimal, Field(gt=0, le=Decimal("1e6"), max_digits=12, decimal_places=3)]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class LineIn(ApiModel):
    goods_id: str = Field(min_length=1, max_length=64, examples=["1001"])
    name: str = Field(min_length=1, max_length=256, examples=["Milk 3.2% 1 l"])
    price: MoneyIn
    quantity: QuantityIn = Decimal(1)
    discount: MoneyIn = Field(
        default=Decimal(0), description="the register's own discount on the line"
    )
    amount: MoneyIn | None = Field(
        default=None,
        description=(
            "line sum after the register's own discount: price x quantity - discount, to the "
            "cent (either rounding of the exact product); omitted, it is computed (half up)"
        ),
    )
    barcode: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _amount_adds_up(self) -> Self:
        gross = self.price * self.quantity
        expected = gross.quantize(CENT, ROUND_HALF_UP) - self.discount
        if expected < 0:
            raise PydanticCustomError(
                "discount_too_large",
                "discount {discount} is more than price x quantity {gross}",
                {"discount": str(self.discount), "gross": str(gross.quantize(CENT, ROUND_HALF_UP))},
            )
        if self.amount is None:
            self.amount = expected
        elif not (
            gross.quantize(CENT, ROUND_FLOOR) - self.discount
            <= self.amount
            <= gross.quantize(CENT, ROUND_CEILING) - self.discount
        ):
            raise PydanticCustomError(
                "amount_mismatch",
                "amount {amount} does not match price x quantity - discount = {expected}",
                {"amount": str(self.amount), "expected": str(expected)},
            )
        return self

    def line_amount(self) -> Decimal:
        if self.amount is None:  # filled in by the validator; -O must not turn this into None
            raise ValueError("line amount missing after validation")
        return self.amount


def _bounded_total(lines: Iterable[LineIn]) -> None:
    total = sum((line.line_amount() for line in lines), Decimal(0))
    if total > MAX_TOTAL:
        raise PydanticCustomError(
            "total_too_large",
            "the lines total {total}, over the limit of {limit}",
            {"total": str(total), "limit": f"{MAX_TOTAL:f}"},
        )


class ChequeIn(ApiModel):
    number: str | None = Field(default=None, min_length=1, max_length=64)
    card: str | None = Field(default=None, min_length=4, max_length=64, pattern=r"^[0-9A-Za-z]+$")
    lines: list[LineIn] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _total(self) -> Self:
        _bounded_total(self.lines)
        return self


class LinesIn(ApiModel):
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    replace: bool = Field(default=False, description="replace all lines instead of adding")

    @model_validator(mode="after")
    def _total(self) -> Self:
        _bounded_total(self.lines)
        return self


class CardIn(ApiModel):
    card: str = Field(min_length=4, max_length=64, pattern=r"^[0-9A-Za-z]+$")


class PaymentIn(ApiModel):
    amount: Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), max_digits=14, decimal_places=2)]


class RefundLineIn(ApiModel):
    position: int = Field(ge=1, le=500)
    quantity: QuantityIn


class RefundIn(ApiModel):
    lines: list[RefundLineIn] | None = Field(default=None, description="omit to refund all")


class ReceiptIn(ApiModel):
    cheque_id: str = Field(min_length=1, max_length=64)


class LineOut(ApiModel):
    position: int
    goods_id: str
    barcode: str | None
    name: str
    price: Decimal
    quantity: Decimal
    amount: Decimal


class ChequeOut(ApiModel):
    id: str
    number: str
    state: str
    card: str | None = Field(description="masked")
    total: Decimal
    discount: Decimal
    available_bonuses: Decimal
    redeemed: Decimal
    accrued: Decimal | None
    balance_before: Decimal | None
    balance_after: Decimal | None
    offline: bool
    queued: bool
    card_blocked: bool
    cashier_message: str | None
    cheque_message: str | None
    purchase_id: str | None
    lines: list[LineOut]


class RefundOut(ApiModel):
    refund_id: str | None
    queued: bool
    amount: Decimal
    balance: Decimal | None
    cashier_message: str | None


class BalanceOut(ApiModel):
    card: str
    balance: Decimal | None
    offline: bool
    cashier_message: str | None


class Problem(ApiModel):
    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    cashier_message: str | None = None
    errors: list[dict[str, Any]] | None = None


class ReceiptOut(ApiModel):
    cheque_id: str
    columns: int
    lines: list[str]
    escpos_base64: str


class PrintOut(ApiModel):
    job_id: str
    state: str


class DeviceOut(ApiModel):
    name: str
    kind: str
    state: str
    power: str
    flags: dict[str, bool | None] = Field(default_factory=dict)
    last_error: str | None = None


class StatusOut(ApiModel):
    version: str
    register_id: str
    health: str = Field(
        description="ok, or degraded: the journal cannot be written or was"
        " found damaged (see problems and journal.state)"
    )
    problems: list[str] = Field(default_factory=list)
    connectivity: str
    journal: dict[str, Any]
    cheques: dict[str, Any] = Field(
        default_factory=dict,
        description="open cheques: count, cap, how many hold bonuses, the oldest untouched",
    )
    devices: list[DeviceOut]
    passthrough: dict[str, Any] | None = Field(
        default=None,
        description="with [[passthrough]] entries: each relay (virtual port, device, running,"
        " error, counters), the sales settled on the way (online, offline, no card, failed,"
        " items unmatched in the catalogue and the last ones' names) and the masked card"
        " waiting for a receipt",
    )
    uptime_seconds: float
