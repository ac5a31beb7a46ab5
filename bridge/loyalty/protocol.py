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
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from drivers.masking import mask_pan

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
    """The one masking rule (drivers/masking.py): at most 6 first + 4 last, never over half."""
    return mask_pan(number)


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


# --------------------------------------------------------------------------- answers
#
# Answers are read the way robust clients read them, because processing versions drift
# and one field's type must never fail a sale: ids are opaque text whether they come as
# a number or a string, money may come as a number or a numeric string, a value we cannot
# use is treated as absent, unknown fields are ignored and an unknown `code` is a refusal.
# Only `code` must be there and be text: without it nothing can be done with the answer.
# Every deviation is reported to the `DriftSink` passed in the validation context (see
# `answer_context`), so an integrator sees it without any sale failing.

COERCED = "coerced"  # a value of another JSON type was converted (number id -> text, ...)
NULL = "null"  # null where the register acts on a value: treated as absent
MISSING = "missing"  # absent where the register acts on a value
UNREADABLE = "unreadable"  # a value that cannot be converted: treated as absent
UNKNOWN_CODE = "unknown_code"  # a `code` the contract does not list: a refusal
UNKNOWN_FIELD = "unknown_field"  # a field the contract does not list: ignored

#: What the register acts on in an `Ok` answer, per operation (wire names, "a.b" nested).
#: Absent (or null) it is drift; the register goes on without it (no discount shown, ...).
ACTED_ON: Mapping[str, tuple[str, ...]] = {
    Operation.BALANCE: ("balance",),
    Operation.CALCULATE: ("cheque.totalDiscount", "availableAmount"),
    Operation.AVAILABLE: ("availableAmount",),
    Operation.PAYMENT: ("amount",),
    Operation.DISCOUNT: ("cheque.totalDiscount", "accruedAmount"),
    Operation.CONFIRM: ("accruedAmount",),
}


class DriftSink(Protocol):
    """Where a deviation of an answer from the contract is reported (bridge/loyalty/drift.py)."""

    def note(self, operation: str, field: str, kind: str, detail: str) -> None: ...


def answer_context(operation: str, drift: DriftSink | None) -> dict[str, Any]:
    """The `context=` for `model_validate` of an answer to `operation`, reporting to `drift`."""
    return {"operation": operation, "drift": drift}


def _note(info: ValidationInfo, field: str, kind: str, detail: str) -> None:
    ctx = info.context
    if ctx:
        sink = ctx.get("drift")
        if sink is not None:
            sink.note(str(ctx.get("operation") or "?"), field, kind, detail)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _where(prefix: str, info: ValidationInfo) -> str:
    return prefix + to_camel(info.field_name or "?")


_NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_TEXT = re.compile(r"[0-9]{1,18}")


def _answer_money(prefix: str = "") -> BeforeValidator:
    """A number or numeric text, exactly (JSON numbers arrive as int or Decimal, see `loads`)."""

    def read(value: Any, info: ValidationInfo) -> Decimal | None:
        if value is None:
            return None
        number: Decimal | None = None
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int) and not isinstance(value, bool):
            number = Decimal(value)
        elif isinstance(value, float):  # only from Python callers: `loads` never makes one
            number = Decimal(repr(value))
        elif isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value.strip()):
            number = Decimal(value.strip())
            _note(info, _where(prefix, info), COERCED, "text -> number")
        if number is None or not number.is_finite() or abs(number) >= MAX_MAGNITUDE:
            what = _json_type(value) if number is None else "a number out of range"
            _note(info, _where(prefix, info), UNREADABLE, f"{what} is not an amount: ignored")
            return None
        return number

    return BeforeValidator(read)


def _answer_text(
    prefix: str = "", *, opaque_id: bool = False, default: str | None = None
) -> BeforeValidator:
    """Text; a number is kept as its text (ids are opaque), anything else is absent."""

    def read(value: Any, info: ValidationInfo) -> str | None:
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            if not isinstance(value, Decimal) or value.is_finite():
                _note(info, _where(prefix, info), COERCED, "number -> text")
                return str(value)
        kind = "an id" if opaque_id else "text"
        _note(info, _where(prefix, info), UNREADABLE, f"{_json_type(value)} is not {kind}: ignored")
        return default

    return BeforeValidator(read)


def _answer_int(prefix: str = "", default: int | None = None) -> BeforeValidator:
    def read(value: Any, info: ValidationInfo) -> int | None:
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            _note(info, _where(prefix, info), COERCED, "text -> number")
            return int(value.strip())
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            _note(info, _where(prefix, info), COERCED, "decimal -> integer")
            return int(value)
        _note(info, _where(prefix, info), UNREADABLE, f"{_json_type(value)} is not a number")
        return default

    return BeforeValidator(read)


def _answer_object(prefix: str = "") -> BeforeValidator:
    def read(value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, dict | BaseModel):
            return value
        _note(info, _where(prefix, info), UNREADABLE, f"{_json_type(value)} is not an object")
        return None

    return BeforeValidator(read)


def _answer_list(prefix: str = "") -> BeforeValidator:
    """A list of objects; null is an empty list, items that are not objects are left out."""

    def read(value: Any, info: ValidationInfo) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            _note(info, _where(prefix, info), UNREADABLE, f"{_json_type(value)} is not a list")
            return []
        kept = [item for item in value if isinstance(item, dict | BaseModel)]
        if len(kept) != len(value):
            _note(info, _where(prefix, info) + "[]", UNREADABLE, "items that are not objects")
        return kept

    return BeforeValidator(read)


_CODES = {code.value.casefold(): code.value for code in ErrorCode}
MAX_CODE_LENGTH = 64
_UNSAFE_IN_LOG = re.compile(r"[^A-Za-z0-9_.-]|\d{6,}")


def _read_code(value: Any, info: ValidationInfo) -> str:
    """The one field an answer cannot do without: it says whether the step was done."""
    if not isinstance(value, str) or not value.strip():
        what = "empty text" if isinstance(value, str) else _json_type(value)  # no value: no PAN
        raise ValueError(f"must be a result code such as Ok, not {what}")
    text = value.strip()[:MAX_CODE_LENGTH]  # it becomes the POS API's machine code
    known = _CODES.get(text.casefold())
    if known is None:
        _note(info, "code", UNKNOWN_CODE, _UNSAFE_IN_LOG.sub("?", text[:40]))
        return text
    if known != value:
        _note(info, "code", COERCED, "spelling of a known code")
    return known


_ABSENT = object()


class ResponseModel(WireModel):
    """Answers are read tolerantly (see above); `drift_prefix` names nested fields in reports."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )
    drift_prefix: ClassVar[str] = ""

    @model_validator(mode="wrap")
    @classmethod
    def _report_drift(
        cls, data: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        model = handler(data)
        if info.context and info.context.get("drift") is not None and isinstance(data, dict):
            known = _known_keys(cls)
            for key in data:
                if key not in known:
                    _note(info, cls.drift_prefix + str(key)[:64], UNKNOWN_FIELD, "ignored")
            model._check_acted_on(data, info)
        return model

    def _check_acted_on(self, data: dict[str, Any], info: ValidationInfo) -> None:
        """Report what the register would act on but did not get (ProcessingResponse)."""


_KNOWN_KEYS: dict[type[BaseModel], frozenset[str]] = {}


def _known_keys(cls: type[BaseModel]) -> frozenset[str]:
    keys = _KNOWN_KEYS.get(cls)
    if keys is None:
        names = [(name, f.alias) for name, f in cls.model_fields.items()]
        keys = frozenset(k for pair in names for k in pair if k)
        _KNOWN_KEYS[cls] = keys
    return keys


_Money = Annotated[Money | None, _answer_money()]
_Text = Annotated[str | None, _answer_text()]
_Id = Annotated[str | None, _answer_text(opaque_id=True)]


class ResponseLine(ResponseModel):
    drift_prefix: ClassVar[str] = "cheque.lines[]."

    position: Annotated[int | None, _answer_int(drift_prefix)] = None
    amount: Annotated[Money | None, _answer_money(drift_prefix)] = None
    discount: Annotated[Money | None, _answer_money(drift_prefix)] = None
    cashback: Annotated[Money | None, _answer_money(drift_prefix)] = None
    pay_amount: Annotated[Money | None, _answer_money(drift_prefix)] = None
    message: Annotated[str | None, _answer_text(drift_prefix)] = None


class ResponseCheque(ResponseModel):
    drift_prefix: ClassVar[str] = "cheque."

    total_amount: Annotated[Money | None, _answer_money(drift_prefix)] = None
    total_discount: Annotated[Money | None, _answer_money(drift_prefix)] = None
    total_cashback: Annotated[Money | None, _answer_money(drift_prefix)] = None
    lines: Annotated[list[ResponseLine], _answer_list(drift_prefix)] = Field(default_factory=list)


class ProcessingResponse(ResponseModel):
    code: Annotated[str, BeforeValidator(_read_code)]
    error_message: _Text = None
    cashier_message: _Text = None
    cheque_message: _Text = None
    operation_id: _Id = None
    transaction_id: _Id = None
    cheque: Annotated[ResponseCheque | None, _answer_object()] = None
    balance: _Money = None
    available_amount: _Money = None
    available_bonus_amount: _Money = None
    accrued_amount: _Money = None
    amount: _Money = None
    bonus_amount: _Money = None

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK

    def _check_acted_on(self, data: dict[str, Any], info: ValidationInfo) -> None:
        if info.context is None or not self.ok:
            return
        for path in ACTED_ON.get(str(info.context.get("operation")), ()):
            value: Any = self
            raw: Any = data
            for part in path.split("."):
                value = getattr(value, _snake(part), None) if value is not None else None
                raw = raw.get(part, _ABSENT) if isinstance(raw, dict) else _ABSENT
            if value is None and raw is None:
                _note(info, path, NULL, "treated as absent")
            elif value is None and raw is _ABSENT:
                _note(info, path, MISSING, "the register goes on without it")


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


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
    drift_prefix: ClassVar[str] = "rejected[]."

    goods_id: Annotated[str | None, _answer_text(drift_prefix, opaque_id=True)] = None
    error: Annotated[str, _answer_text(drift_prefix, default="")] = ""


class GoodsImportResponse(ResponseModel):
    code: Annotated[str, BeforeValidator(_read_code)]
    error_message: _Text = None
    accepted: Annotated[int, _answer_int(default=0)] = 0
    rejected: Annotated[list[GoodsRejection], _answer_list()] = Field(default_factory=list)


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
    """Parse JSON with every non-integer number as Decimal, exactly as written.

    Integers stay `int` (exact at any size), every other number is `Decimal(text)`: no
    binary float on the way.  Nesting too deep for the parser is a `ValueError` like any
    other broken JSON, so callers have one error to catch.
    """
    try:
        return json.loads(data, parse_float=Decimal)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
