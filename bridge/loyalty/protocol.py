"""Wire models of processing contract v1.2 (../shared/protocol/processing-v1.2.md).

This is the one module of `bridge` the sandbox may import, so the client and the
server cannot drift apart: both validate against the same models.  It depends on
pydantic and the standard library only.

Money and quantities are `Decimal` end to end.  JSON is written by our own small
encoder because the standard one cannot emit a Decimal as a JSON number without
going through a binary float, and read with `parse_float=Decimal` for the same reason.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic.alias_generators import to_camel

API_VERSION = "v1.2"
PROCESSING_PREFIX = f"/{API_VERSION}/Processing/"
GOODS_IMPORT_PATH = f"/{API_VERSION}/Goods/Import"
GOODS_IMPORT_CHUNK = 1000

_quote = json.encoder.encode_basestring  # the C escaper where CPython has it

MONEY_PLACES = Decimal("0.01")
QUANTITY_PLACES = Decimal("0.001")


# --------------------------------------------------------------------------- values


def _to_decimal(value: Any) -> Any:
    """Accept str/int/Decimal; a float goes through its shortest repr, never its binary value."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    return value


MAX_MAGNITUDE = Decimal(10) ** 15


def _finite(value: Decimal) -> Decimal:
    # Bounded too: quantizing a larger value overflows the Decimal context, so a model
    # that validated could not be encoded.
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if abs(value) >= MAX_MAGNITUDE:
        raise ValueError("must be below 10^15")
    return value


def _quantizer(places: Decimal) -> PlainSerializer:
    return PlainSerializer(
        lambda d: d.quantize(places, rounding=ROUND_HALF_UP),
        return_type=Decimal,
        when_used="always",
    )


Money = Annotated[
    Decimal, BeforeValidator(_to_decimal), AfterValidator(_finite), _quantizer(MONEY_PLACES)
]
Quantity = Annotated[
    Decimal, BeforeValidator(_to_decimal), AfterValidator(_finite), _quantizer(QUANTITY_PLACES)
]


def _naive_local(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError(
            "must be the register's local time without an offset (e.g. 2026-11-29T14:05:31)"
        )
    return value.replace(microsecond=0)


LocalDateTime = Annotated[
    datetime,
    AfterValidator(_naive_local),
    PlainSerializer(lambda d: d.isoformat(timespec="seconds"), return_type=str),
]


def local_now() -> datetime:
    """The register's local wall-clock time, naive, to the second: what `operationDate` carries."""
    return datetime.now().replace(microsecond=0)


def mask_card(number: str) -> str:
    """First 6 and last 4 digits of long numbers, last 4 of short ones; never the whole number."""
    n = len(number)
    if n >= 13:
        return number[:6] + "*" * (n - 10) + number[-4:]
    if n > 4:
        return "*" * (n - 4) + number[-4:]
    return "*" * n


# --------------------------------------------------------------------------- enums


class Operation(StrEnum):
    BALANCE = "balance"
    CALCULATE = "calculate"
    AVAILABLE = "available"
    DISCOUNT = "discount"
    PAYMENT = "payment"
    CANCEL_OPERATION = "cancel_operation"
    CONFIRM = "confirm"
    CANCEL = "cancel"
    REFUND = "refund"


PATHS: Mapping[Operation, str] = {
    Operation.BALANCE: "Balance",
    Operation.CALCULATE: "Purchases/{purchaseId}/Calculate",
    Operation.AVAILABLE: "Purchases/{purchaseId}/Bonus/Available",
    Operation.DISCOUNT: "Purchases/{purchaseId}/Bonus",
    Operation.PAYMENT: "Purchases/{purchaseId}/Bonus/Payment",
    Operation.CANCEL_OPERATION: "Purchases/{purchaseId}/Operations/{operationId}/Cancel",
    Operation.CONFIRM: "Purchases/{purchaseId}/Confirm",
    Operation.CANCEL: "Purchases/{purchaseId}/Cancel",
    Operation.REFUND: "Purchases/{purchaseId}/Refund",
}

_SEGMENT = r"([^/]+)"
_PATH_PATTERNS: list[tuple[re.Pattern[str], Operation]] = [
    (
        re.compile(
            "^"
            + re.escape(PROCESSING_PREFIX)
            + re.escape(tmpl)
            .replace(re.escape("{purchaseId}"), _SEGMENT)
            .replace(re.escape("{operationId}"), _SEGMENT)
            + "$"
        ),
        op,
    )
    for op, tmpl in PATHS.items()
]


def path_for(op: Operation, purchase_id: str | None = None, operation_id: str | None = None) -> str:
    """The path of an operation below the base URL, e.g. `/v1.2/Processing/Purchases/X/Confirm`."""
    tmpl = PATHS[op]
    if "{purchaseId}" in tmpl:
        if not purchase_id:
            raise ValueError(f"{op} needs a purchaseId")
        tmpl = tmpl.replace("{purchaseId}", _url_segment(purchase_id))
    if "{operationId}" in tmpl:
        if not operation_id:
            raise ValueError(f"{op} needs the operationId of the operation to cancel")
        tmpl = tmpl.replace("{operationId}", _url_segment(operation_id))
    return PROCESSING_PREFIX + tmpl


def _url_segment(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._~-]{1,100}", value):
        raise ValueError(f"id {value!r} must be 1-100 URL-safe characters")
    return value


def match_path(path: str) -> tuple[Operation, str | None, str | None] | None:
    """Inverse of `path_for`: (operation, purchaseId, operationId in the path) or None."""
    for pattern, op in _PATH_PATTERNS:
        m = pattern.match(path)
        if m:
            groups = m.groups()
            return (
                op,
                groups[0] if len(groups) > 0 else None,
                groups[1] if len(groups) > 1 else None,
            )
    return None


class ErrorCode(StrEnum):
    OK = "Ok"
    CARD_NOT_FOUND = "CardNotFound"
    CARD_BLOCKED = "CardBlocked"
    CARD_NOT_ACTIVATED = "CardNotActivated"
    CARD_EXPIRED = "CardExpired"
    NOT_ENOUGH_MONEY = "NotEnoughMoney"
    LARGE_PAYMENT_AMOUNT = "LargePaymentAmount"
    NOT_UNIQUE_OPERATION_ID = "NotUniqueOperationID"
    NOT_UNIQUE_PURCHASE_ID = "NotUniquePurchaseID"
    OPERATION_NOT_FOUND = "OperationNotFound"
    OPERATION_IS_CONFIRMED = "OperationIsConfirmed"
    OPERATION_IS_CANCELED = "OperationIsCanceled"
    PURCHASE_NOT_FOUND = "PurchaseNotFound"
    DIFFERENT_CHEQUE = "DifferentCheque"
    INCORRECT_OPERATION_ORDER = "IncorrectOperationOrder"
    PURCHASE_OPERATION_CONFLICT = "PurchaseOperationConflict"
    LIMIT_GAINED = "LimitGained"
    DEVICE_BLOCKED = "DeviceBlocked"
    WRONG_PIN = "WrongPin"
    SYSTEM_ERROR = "SystemError"


CARD_BLOCKED_TEXT = "Card is blocked"


# --------------------------------------------------------------------------- models


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class RequestModel(WireModel):
    """Requests are strict: a field we do not know is a bug on one side or the other."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class Identifier(RequestModel):
    type: Literal["CardNumber", "Phone", "Auto"] = "CardNumber"
    value: str = Field(min_length=1, max_length=64)

    def __repr__(self) -> str:
        return f"Identifier(type={self.type!r}, value={mask_card(self.value)!r})"

    __str__ = __repr__


class Param(RequestModel):
    name: str
    value: str


class ChequeLine(RequestModel):
    position: int = Field(ge=1)
    goods_id: str = Field(min_length=1, max_length=64)
    barcode: str | None = None
    name: str = Field(min_length=1, max_length=256)
    price: Money = Field(ge=0)
    quantity: Quantity = Field(gt=0)
    amount: Money = Field(ge=0)
    discount: Money | None = None
    params: list[Param] | None = None


class Cheque(RequestModel):
    number: str = Field(min_length=1, max_length=64)
    date: LocalDateTime
    lines: list[ChequeLine] = Field(min_length=1)

    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


class RequestBase(RequestModel):
    operation_id: str = Field(min_length=1, max_length=100)
    operation_date: LocalDateTime
    identifier: Identifier | None = None
    cashier: str | None = None


class BalanceRequest(RequestBase):
    pass


class CalculateRequest(RequestBase):
    cheque: Cheque
    coupons: list[str] | None = None
    payment_amount: Money | None = Field(default=None, ge=0)


class AvailableRequest(RequestBase):
    cheque: Cheque


class DiscountRequest(RequestBase):
    cheque: Cheque


class PaymentRequest(RequestBase):
    cheque: Cheque
    amount: Money = Field(gt=0)
    pin_code: str | None = None

    def __repr__(self) -> str:  # the PIN never reaches a log
        pin = "'****'" if self.pin_code else None
        return (
            f"PaymentRequest(operation_id={self.operation_id!r}, amount={self.amount},"
            f" pin_code={pin})"
        )


class CancelOperationRequest(RequestBase):
    pass


class ConfirmRequest(RequestBase):
    pass


class CancelRequest(RequestBase):
    pass


class RefundRequest(RequestBase):
    cheque: Cheque
    refund_purchase_id: str | None = None
    refund_transaction_id: str | None = None


REQUEST_MODELS: Mapping[Operation, type[RequestBase]] = {
    Operation.BALANCE: BalanceRequest,
    Operation.CALCULATE: CalculateRequest,
    Operation.AVAILABLE: AvailableRequest,
    Operation.DISCOUNT: DiscountRequest,
    Operation.PAYMENT: PaymentRequest,
    Operation.CANCEL_OPERATION: CancelOperationRequest,
    Operation.CONFIRM: ConfirmRequest,
    Operation.CANCEL: CancelRequest,
    Operation.REFUND: RefundRequest,
}


class ResponseModel(WireModel):
    """Responses are lenient: processing may add fields in a later version."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


class ResponseLine(ResponseModel):
    position: int
    amount: Money | None = None
    discount: Money | None = None
    cashback: Money | None = None
    pay_amount: Money | None = None
    message: str | None = None


class ResponseCheque(ResponseModel):
    total_amount: Money | None = None
    total_discount: Money | None = None
    total_cashback: Money | None = None
    lines: list[ResponseLine] = Field(default_factory=list)


class ProcessingResponse(ResponseModel):
    code: str
    error_message: str | None = None
    cashier_message: str | None = None
    cheque_message: str | None = None
    operation_id: str | None = None
    transaction_id: str | None = None
    cheque: ResponseCheque | None = None
    balance: Money | None = None
    available_amount: Money | None = None
    available_bonus_amount: Money | None = None
    accrued_amount: Money | None = None
    amount: Money | None = None
    bonus_amount: Money | None = None

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK


class GoodsItem(RequestModel):
    goods_id: str = Field(min_length=1, max_length=64)
    barcode: str | None = None
    name: str = Field(min_length=1, max_length=256)
    group: str | None = None
    price: Money | None = Field(default=None, ge=0)


class GoodsImportRequest(RequestModel):
    goods: list[GoodsItem] = Field(max_length=GOODS_IMPORT_CHUNK)
    replace: bool = False


class GoodsRejection(ResponseModel):
    goods_id: str | None = None
    error: str


class GoodsImportResponse(ResponseModel):
    code: str
    error_message: str | None = None
    accepted: int = 0
    rejected: list[GoodsRejection] = Field(default_factory=list)


# --------------------------------------------------------------------------- JSON


def _encode(value: Any, out: list[str], floats: bool) -> None:
    # one C-level string escaper per string: json.dumps per value costs an encoder each time
    if isinstance(value, str):
        out.append(_quote(value))
    elif isinstance(value, Decimal):
        out.append(format(value, "f"))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for k, v in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_quote(str(k)))
            out.append(":")
            _encode(v, out, floats)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out, floats)
        out.append("]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float) and not floats:
        raise TypeError("binary floats are not sent to processing; use Decimal")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def dumps(value: Any, *, floats: bool = False) -> bytes:
    """JSON bytes with Decimals written as numbers (exact digits, no float).

    `floats=True` lets durations and timestamps through (local API); money is Decimal
    either way.
    """
    out: list[str] = []
    _encode(value, out, floats)
    return "".join(out).encode("utf-8")


def encode(model: BaseModel) -> bytes:
    """A wire model as JSON bytes: camelCase, no nulls, money 2 and quantities 3 decimals."""
    return dumps(model.model_dump(mode="python", by_alias=True, exclude_none=True))


def loads(data: bytes | str) -> Any:
    """Parse JSON with every non-integer number as Decimal."""
    return json.loads(data, parse_float=Decimal)
