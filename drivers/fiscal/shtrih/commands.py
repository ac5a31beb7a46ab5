"""Byte layouts of the Shtrih-M commands posbridge uses (their replies: `replies`).

Layouts follow the vendor's protocol description ("Протокол ККТ Штрих-М"): integers
little-endian, money in kopecks over 5 bytes, quantities in thousandths (0x80) or
millionths (0xFF46), text in cp1251.  Each builder returns a `Command` saying which
password it takes and whether it may safely be sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from drivers.fiscal.base import FiscalPayment, PaymentKind, TaxRate, TaxSystem

ENCODING = "cp1251"

SHORT_STATUS = 0x10
FULL_STATUS = 0x11
BOLD_STRING = 0x12
PRINT_STRING = 0x17
CUT = 0x25
FONT_INFO = 0x26
FONT_STRING = 0x2F
SALE = 0x80
CLOSE = 0x85
CANCEL = 0x88
OPEN_RECEIPT = 0x8D
DEVICE_TYPE = 0xFC
FN_STATUS = 0xFF01
FN_FIND_DOCUMENT = 0xFF0A
CLOSE_V2 = 0xFF45
OPERATION_V2 = 0xFF46

# print-string flags: which paper the line goes to
JOURNAL = 0x01
RECEIPT = 0x02

STRING_FIELD = 40  # 0x17 / 0x2F text field, zero-padded
BOLD_FIELD = 20  # 0x12 text field
MAX_TEXT = 200  # longer lines are sent whole by newer firmware; the frame caps the rest
MAX_NAME = 128  # FF46 item name

MAX_MONEY = 9_999_999_999  # 5 bytes of kopecks, as the protocol allows

_CONTROL = dict.fromkeys(range(32))  # str.translate table: drop control characters


class Password(Enum):
    NONE = "none"  # 0xFC takes none
    OPERATOR = "operator"
    ADMIN = "admin"


class Command(NamedTuple):  # a tuple: built for every line of every receipt
    code: int
    data: bytes
    password: Password = Password.OPERATOR
    repeatable: bool = False  # safe to send again if its answer was lost
    prints: bool = False  # the answer comes after printing: allow for it


# encoders --------------------------------------------------------------------------
def money(value: Decimal, what: str = "amount") -> int:
    """Kopecks; a value with more than 2 decimals or below zero is refused, never rounded."""
    if not isinstance(value, Decimal):
        raise ValueError(f"{what} must be a Decimal, got {type(value).__name__}")
    kopecks = value * 100
    if kopecks != kopecks.to_integral_value() or kopecks < 0 or kopecks > MAX_MONEY:
        raise ValueError(f"{what} {value:f} is not a sum in kopecks (0.00..99999999.99)")
    return int(kopecks)


def scaled(value: Decimal, decimals: int, size: int, what: str) -> int:
    if not isinstance(value, Decimal):
        raise ValueError(f"{what} must be a Decimal, got {type(value).__name__}")
    units = value.scaleb(decimals)
    if units != units.to_integral_value() or units <= 0 or units >= 256**size:
        raise ValueError(f"{what} {value:f} must be positive with at most {decimals} decimals")
    return int(units)


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def text_bytes(text: str, *, limit: int, pad: int = 0) -> bytes:
    """cp1251 (unprintable characters become '?'; control characters dropped), cut and padded."""
    if not text.isprintable():  # rare: skip the slower translate for ordinary text
        text = text.translate(_CONTROL)
    data = text.encode(ENCODING, errors="replace")[:limit]
    return data.ljust(pad, b"\0")


def short_status() -> Command:
    return Command(SHORT_STATUS, b"", repeatable=True)


def full_status() -> Command:
    return Command(FULL_STATUS, b"", repeatable=True)


def device_type() -> Command:
    return Command(DEVICE_TYPE, b"", Password.NONE, repeatable=True)


def font_info(font: int = 1) -> Command:
    return Command(FONT_INFO, bytes([font]), Password.ADMIN, repeatable=True)


def print_string(text: str, flags: int = RECEIPT) -> Command:
    data = bytes([flags]) + text_bytes(text, limit=MAX_TEXT, pad=STRING_FIELD)
    return Command(PRINT_STRING, data, prints=True)


def bold_string(text: str, flags: int = RECEIPT) -> Command:
    data = bytes([flags]) + text_bytes(text, limit=MAX_TEXT, pad=BOLD_FIELD)
    return Command(BOLD_STRING, data, prints=True)


def font_string(text: str, font: int = 1, flags: int = RECEIPT) -> Command:
    data = bytes([flags, font]) + text_bytes(text, limit=MAX_TEXT, pad=STRING_FIELD)
    return Command(FONT_STRING, data, prints=True)


def cut(partial: bool = False) -> Command:
    return Command(CUT, bytes([1 if partial else 0]), prints=True)


def open_receipt(kind: int = 0) -> Command:
    """0 sale, 1 buy, 2 sale refund, 3 buy refund."""
    return Command(OPEN_RECEIPT, bytes([kind]), prints=True)


# 0x80 tax groups (table 6 defaults) and 0xFF46 tax bits
TAX_GROUP = {
    TaxRate.VAT20: 1,
    TaxRate.VAT10: 2,
    TaxRate.VAT0: 3,
    TaxRate.NONE: 4,
    TaxRate.VAT20_120: 5,
    TaxRate.VAT10_110: 6,
}
TAX_BIT = {rate: 1 << (group - 1) for rate, group in TAX_GROUP.items()}

TAX_SYSTEM_BIT = {
    TaxSystem.OSN: 0x01,
    TaxSystem.USN_INCOME: 0x02,
    TaxSystem.USN_INCOME_OUTCOME: 0x04,
    TaxSystem.ESN: 0x10,
    TaxSystem.PATENT: 0x20,
}

# FF45 payment slots (1-based): 1 cash, 2 electronic, 14 prepaid, 15 credit, 16 other
PAYMENT_SLOT = {
    PaymentKind.CASH: 1,
    PaymentKind.ELECTRONIC: 2,
    PaymentKind.PREPAID: 14,
    PaymentKind.CREDIT: 15,
    PaymentKind.OTHER: 16,
}


def sale(name: str, quantity: Decimal, price: Decimal, tax: TaxRate, department: int) -> Command:
    """The pre-FN sale (0x80): quantity in thousandths, 4 tax-group bytes, 40-byte text."""
    data = (
        le(scaled(quantity, 3, 5, "quantity"), 5)
        + le(money(price, "price"), 5)
        + bytes([department, TAX_GROUP[tax], 0, 0, 0])
        + text_bytes(name, limit=STRING_FIELD, pad=STRING_FIELD)
    )
    return Command(SALE, data, prints=True)


def operation_v2(
    *,
    name: str,
    quantity: Decimal,
    price: Decimal,
    amount: Decimal,
    tax: TaxRate,
    department: int,
    payment_method: int,
    payment_object: int,
    kind: int = 1,
) -> Command:
    """FF46: the FN-era sale line. The tax sum is left to the device (0xFF x 5)."""
    if not 1 <= payment_method <= 7:
        raise ValueError(f"payment method must be 1..7, got {payment_method}")
    if not 1 <= payment_object <= 255:
        raise ValueError(f"payment object must be 1..255, got {payment_object}")
    if not 0 <= department <= 255:
        raise ValueError(f"department must be 0..255, got {department}")
    data = (
        bytes([kind])
        + le(scaled(quantity, 6, 6, "quantity"), 6)
        + le(money(price, "price"), 5)
        + le(money(amount, "amount"), 5)
        + b"\xff" * 5
        + bytes([TAX_BIT[tax], department, payment_method, payment_object])
        + text_bytes(name, limit=MAX_NAME)
    )
    return Command(OPERATION_V2, data, prints=True)


def close(cash: Decimal, text: str = "") -> Command:
    """The pre-FN close (0x85): cash only, no discount, no taxes."""
    data = (
        le(money(cash, "cash"), 5)
        + bytes(15)
        + b"\0\0"
        + bytes(4)
        + text_bytes(text, limit=STRING_FIELD, pad=STRING_FIELD)
    )
    return Command(CLOSE, data, prints=True)


def close_v2(payments: Sequence[FiscalPayment], tax_system: TaxSystem, text: str = "") -> Command:
    """FF45: 16 payment slots, rounding, 6 tax sums (0: the device computes), tax system."""
    slots = [0] * 16
    for payment in payments:
        slots[PAYMENT_SLOT[payment.kind] - 1] += money(payment.amount, f"{payment.kind} payment")
    if any(slot > MAX_MONEY for slot in slots):
        raise ValueError("a payment sum is out of range")
    data = (
        b"".join(le(slot, 5) for slot in slots)
        + b"\0"
        + bytes(30)
        + bytes([TAX_SYSTEM_BIT[tax_system]])
        + text_bytes(text, limit=64)
    )
    return Command(CLOSE_V2, data, prints=True)


def cancel() -> Command:
    return Command(CANCEL, b"", prints=True)


def fn_status() -> Command:
    return Command(FN_STATUS, b"", Password.ADMIN, repeatable=True)


def fn_find_document(number: int) -> Command:
    return Command(FN_FIND_DOCUMENT, le(number, 4), Password.ADMIN, repeatable=True)
