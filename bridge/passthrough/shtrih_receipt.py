"""What the relay reads out of the POS's fiscal frames: the sold items, the receipt's kind,
and the operator's password to print the loyalty block with.

Only the fields the relay acts on are read; the frames themselves go to the registrar
untouched.  Layouts are the vendor's (see drivers/fiscal/shtrih/commands.py, which builds
the same frames): integers little-endian, money in kopecks over 5 bytes, quantities in
thousandths (0x80) or millionths (0xFF46), text in cp1251 padded with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from bridge.passthrough.session import SoldItem
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih.frames import FrameError

UNKNOWN_AMOUNT = 0xFF_FFFF_FFFF  # 0xFF46: "the device computes the sum"
SALE_RECEIPT = 0  # 0x8D kinds: 0 sale, 1 buy, 2 sale refund, 3 buy refund
# 0xFF46 operation (1 sale, 2 sale refund, 3 buy, 4 buy refund) -> the receipt kind it opens
RECEIPT_OF_OPERATION = {1: 0, 2: 2, 3: 1, 4: 3}
CLOSES = frozenset({cmd.CLOSE, cmd.CLOSE_V2})


def command_of(body: bytes) -> int:
    """The command code of a request or reply body (0xFFnn for the two-byte ones)."""
    if body[:1] == b"\xff" and len(body) >= 2:
        return 0xFF00 | body[1]
    return body[0]


def _fields(body: bytes) -> bytes:
    """What follows the command and the 4 password bytes."""
    head = 2 if body[:1] == b"\xff" else 1
    return body[head + 4 :]


def password_of(body: bytes) -> int:
    """The operator's password the POS sent with this request."""
    head = 2 if body[:1] == b"\xff" else 1
    if len(body) < head + 4:
        raise FrameError(f"request 0x{command_of(body):X} carries no password")
    return int.from_bytes(body[head : head + 4], "little")


def reply_error(reply: bytes) -> int | None:
    """The reply's error byte (0 = success), or None when the reply has none."""
    head = 2 if reply[:1] == b"\xff" else 1
    return reply[head] if len(reply) > head else None


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(cmd.ENCODING, errors="replace").strip()


def _uint(data: bytes, start: int, size: int, what: str) -> int:
    if len(data) < start + size:
        raise FrameError(f"{what}: frame too short ({len(data)} bytes of data)")
    return int.from_bytes(data[start : start + size], "little")


def _kopecks(value: int) -> Decimal:
    return Decimal(value) / 100


def parse_sale(body: bytes) -> SoldItem:
    """0x80: quantity(5, thousandths) price(5) department(1) taxes(4) text(40)."""
    data = _fields(body)
    quantity = Decimal(_uint(data, 0, 5, "sale quantity")) / 1000
    price = _uint(data, 5, 5, "sale price")
    if quantity <= 0:
        raise FrameError("sale with a zero quantity")
    amount = (quantity * price).quantize(Decimal(1), ROUND_HALF_UP)  # as the device rounds
    return SoldItem(_name(data[15:]), quantity.normalize(), _kopecks(price), _kopecks(int(amount)))


def parse_operation_v2(body: bytes) -> tuple[int, SoldItem]:
    """0xFF46: operation(1) quantity(6, millionths) price(5) amount(5) tax sum(5) tax(1)
    department(1) method(1) object(1) name; the operation and the item."""
    data = _fields(body)
    operation = _uint(data, 0, 1, "operation kind")
    quantity = Decimal(_uint(data, 1, 6, "operation quantity")) / 1_000_000
    price = _uint(data, 7, 5, "operation price")
    amount = _uint(data, 12, 5, "operation amount")
    if quantity <= 0:
        raise FrameError("operation with a zero quantity")
    if amount == UNKNOWN_AMOUNT:
        amount = int((quantity * price).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    name = _name(data[26:])
    return operation, SoldItem(name, quantity.normalize(), _kopecks(price), _kopecks(amount))


@dataclass
class OpenReceipt:
    """A receipt the registrar accepted an open or a first item for, and its items so far."""

    kind: int = SALE_RECEIPT
    items: list[SoldItem] = field(default_factory=list)
    unreadable: int = 0  # items the registrar accepted that we could not read
    closing: bool = False  # a close was sent: its loyalty block (if any) is done
