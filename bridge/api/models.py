"""Request and response bodies of the POS API (camelCase on the wire, Decimal money)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MoneyIn = Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), max_digits=14, decimal_places=2)]
QuantityIn = Annotated[Decimal, Field(gt=0, le=Decimal("1e6"), max_digits=12, decimal_places=3)]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class LineIn(ApiModel):
    goods_id: str = Field(min_length=1, max_length=64, examples=["1001"])
    name: str = Field(min_length=1, max_length=256, examples=["Milk 3.2% 1 l"])
    price: MoneyIn
    quantity: QuantityIn = Decimal(1)
    amount: MoneyIn | None = Field(
        default=None, description="line sum after the register's own discount; price x quantity"
    )
    barcode: str | None = Field(default=None, max_length=128)


class ChequeIn(ApiModel):
    number: str | None = Field(default=None, min_length=1, max_length=64)
    card: str | None = Field(default=None, min_length=4, max_length=64, pattern=r"^[0-9A-Za-z]+$")
    lines: list[LineIn] = Field(default_factory=list, max_length=500)


class LinesIn(ApiModel):
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    replace: bool = Field(default=False, description="replace all lines instead of adding")


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
    connectivity: str
    journal: dict[str, Any]
    devices: list[DeviceOut]
    uptime_seconds: float
