"""Judging one catalogue row, so processing never sees an item it would refuse.

Every problem of a row is reported, not just the first, each naming the row, the
field, the value found and what is expected: the person fixing a 100,000-row export
in a spreadsheet needs to fix all of a row's faults in one pass.  Barcodes are checked
with python-stdnum (the same check processing applies), not with our own arithmetic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from stdnum import ean

from bridge.catalog.source import RawRow
from bridge.loyalty.protocol import MAX_MAGNITUDE, MONEY_PLACES, GoodsItem

GOODS_ID_MAX = 64
NAME_MAX = 256
GROUP_MAX = 128
_PLAIN_AMOUNT = re.compile(r"\d+(?:[.,]\d+)?")
_SHOWN_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


@dataclass(frozen=True)
class RowError:
    row: int
    line: int
    field: str | None
    value: str | None
    expected: str

    def __str__(self) -> str:
        where = f"row {self.row} (line {self.line})"
        if self.field is None:
            return f"{where}: {self.expected}"
        shown = "" if self.value is None else f" {self.value}"
        return f"{where}: {self.field}{shown}: {self.expected}"


def shown(value: Any) -> str:
    """The offending value as the user should recognise it, shortened."""
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 1] + "…"
    return text


class Item(NamedTuple):
    """A valid row: within every bound of the wire model `GoodsItem`, so it converts."""

    goods_id: str
    barcode: str | None
    name: str
    group: str | None
    price: Decimal | None  # quantized to cents

    def content_hash(self) -> bytes:
        """What identifies the item's content; control characters never occur in fields."""
        parts = (self.goods_id, self.barcode, self.name, self.group, self.price_text)
        text = "\x00".join("\x01" if p is None else p for p in parts)
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    @property
    def price_text(self) -> str | None:
        return None if self.price is None else str(self.price)

    def wire(self) -> GoodsItem:
        return GoodsItem(
            goods_id=self.goods_id,
            barcode=self.barcode,
            name=self.name,
            group=self.group,
            price=self.price,
        )


def validate(raw: RawRow) -> tuple[Item | None, list[RowError]]:
    errors: list[RowError] = [
        RowError(raw.number, raw.line, fld, None, what) for fld, what in raw.problems
    ]

    def bad(fld: str, value: Any, expected: str) -> None:
        errors.append(
            RowError(raw.number, raw.line, fld, None if value is None else shown(value), expected)
        )

    if errors and not raw.fields:  # not a record at all: its fields would only repeat that
        return None, errors
    f = raw.fields
    goods_id = _text(f.get("goodsId"), "goodsId", GOODS_ID_MAX, bad, required=True, allow_int=True)
    name = _text(f.get("name"), "name", NAME_MAX, bad, required=True)
    group = _text(f.get("group"), "group", GROUP_MAX, bad)
    barcode = _barcode(f.get("barcode"), bad)
    price = _price(f.get("price"), bad)
    if errors or goods_id is None or name is None:
        return None, errors
    return Item(goods_id, barcode, name, group, price), []


def _text(
    value: Any,
    fld: str,
    limit: int,
    bad: Any,
    *,
    required: bool = False,
    allow_int: bool = False,
) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            bad(fld, None, "missing; every item needs one")
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int)
        or (isinstance(value, int) and not allow_int)
    ):
        bad(fld, value, "expected text")
        return None
    text = str(value).strip()
    if _CONTROL.search(text):
        bad(
            fld, value, "contains control characters (line breaks, tabs); expected one line of text"
        )
        return None
    if len(text) > limit:
        bad(fld, value, f"is {len(text)} characters long, at most {limit}")
        return None
    return text


def _barcode(value: Any, bad: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        bad(
            "barcode",
            value,
            "expected the barcode as text (a JSON number loses leading zeros)",
        )
        return None
    code = value.strip()
    # the format is ours to judge (stdnum would quietly drop spaces and dashes, and the
    # item would then be sent with them); the check digit is stdnum's
    if not code.isascii() or not code.isdigit():
        bad("barcode", value, "expected digits only (EAN-8, UPC-A, EAN-13 or GTIN-14)")
        return None
    if len(code) not in (8, 12, 13, 14):
        bad("barcode", value, f"has {len(code)} digits, expected 8, 12, 13 or 14")
        return None
    right = ean.calc_check_digit(code[:-1])
    if code[-1] != right:
        bad("barcode", value, f"bad EAN check digit {code[-1]}, expected {right}")
        return None
    return code


def _price(value: Any, bad: Any) -> Decimal | None:
    expected = "expected an amount such as 89.90 (at most 2 decimals, not negative)"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        bad("price", value, expected)
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _PLAIN_AMOUNT.fullmatch(text[1:]):
            bad("price", value, "is negative; " + expected)
            return None
        if not _PLAIN_AMOUNT.fullmatch(text):
            bad("price", value, expected)
            return None
        try:
            amount = Decimal(text.replace(",", "."))
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            bad("price", value, expected)
            return None
    else:
        amount = Decimal(value)
    if not amount.is_finite() or abs(amount) >= MAX_MAGNITUDE:
        bad("price", value, "is out of range; " + expected)
        return None
    if amount < 0:
        bad("price", value, "is negative; " + expected)
        return None
    cents = amount.quantize(MONEY_PLACES)
    if amount != cents:
        bad("price", value, "has more than 2 decimals; " + expected)
        return None
    return cents
