"""The registrar's mode/submode state machine and its fiscal counters.

Modes are the device's own numbers (short status 0x10 reports them): 2 shift open,
3 shift open over 24 hours, 4 shift closed, 8 document open (the high nibble says which:
0 sale, 1 purchase, 2 sale refund, 3 purchase refund).  Submodes are the paper states:
0 paper present, 1 paper out while idle, 2 paper ran out inside a document, 3 paper back
and waiting for "continue printing" (0xB0).

As real FN devices do, the first receipt of a closed shift opens the shift itself (with its
own fiscal document, the shift-opening report).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.registrar.errors import CommandError, DeviceError

MODE_SHIFT_OPEN = 2
MODE_SHIFT_EXPIRED = 3
MODE_SHIFT_CLOSED = 4
MODE_DOCUMENT = 8

MODE_TEXT = {
    MODE_SHIFT_OPEN: "shift open",
    MODE_SHIFT_EXPIRED: "shift open, over 24 hours",
    MODE_SHIFT_CLOSED: "shift closed",
    MODE_DOCUMENT: "receipt open",
}

SUBMODE_PAPER = 0
SUBMODE_PAPER_OUT_IDLE = 1
SUBMODE_PAPER_OUT_ACTIVE = 2
SUBMODE_WAIT_CONTINUE = 3

SHIFT_LIMIT = timedelta(hours=24)


def money(kopecks: int) -> str:
    return str((Decimal(kopecks) / 100).quantize(Decimal("0.01")))


@dataclass
class Item:
    name: str
    quantity: Decimal
    price: int  # kopecks
    amount: int  # kopecks
    tax: int  # the device's tax byte (0xFF46: bit mask; 0x80: tax group 1..4)
    department: int
    payment_method: int | None = None
    payment_object: int | None = None
    operation: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantity": f"{self.quantity.normalize():f}",
            "price": money(self.price),
            "amount": money(self.amount),
            "tax": self.tax,
            "department": self.department,
            "payment_method": self.payment_method,
            "payment_object": self.payment_object,
            "operation": self.operation,
        }


@dataclass
class Receipt:
    kind: int  # 0 sale, 1 purchase, 2 sale refund, 3 purchase refund
    items: list[Item] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(item.amount for item in self.items)


@dataclass
class ClosedDocument:
    number: int
    sign: int
    moment: datetime
    kind: str  # "receipt", "shift_open", "shift_close"
    shift: int
    receipt: Receipt | None = None
    payments: dict[int, int] = field(default_factory=dict)  # payment type (1..16) -> kopecks
    change: int = 0
    tax_system: int | None = None
    taxes: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.number,
            "sign": str(self.sign),
            "kind": self.kind,
            "shift": self.shift,
            "closed_at": self.moment.isoformat(timespec="seconds"),
        }
        if self.receipt is not None:
            out.update(
                receipt_type=self.receipt.kind,
                items=[item.as_json() for item in self.receipt.items],
                messages=list(self.receipt.messages),
                total=money(self.receipt.total),
                payments={str(kind): money(sum_) for kind, sum_ in self.payments.items()},
                change=money(self.change),
                tax_system=self.tax_system,
                taxes=[money(value) for value in self.taxes],
            )
        return out


@dataclass
class DeviceState:
    """Everything the device remembers; the command table changes it under one lock."""

    shift_open: bool = False
    shift_number: int = 0  # the current (or last closed) shift
    shift_opened_at: datetime | None = None
    shift_expired: bool = False  # forced by the shift_over_24h fault
    receipt: Receipt | None = None
    last_document: int = 1  # FD 1: the registration report every fiscalised FN starts with
    documents: list[ClosedDocument] = field(default_factory=list)
    receipt_number: int = 0  # receipts this shift
    paper_out: bool = False
    cover_open: bool = False
    fn_full: bool = False
    fn_missing: bool = False
    await_continue: bool = False  # paper came back inside a document: 0xB0 resumes printing

    @property
    def mode(self) -> int:
        if self.receipt is not None:
            return MODE_DOCUMENT
        if self.shift_open:
            return MODE_SHIFT_EXPIRED if self.over_24h() else MODE_SHIFT_OPEN
        return MODE_SHIFT_CLOSED

    @property
    def mode_byte(self) -> int:
        kind = self.receipt.kind if self.receipt is not None else 0
        return self.mode | (kind << 4)

    @property
    def submode(self) -> int:
        if self.paper_out:
            return SUBMODE_PAPER_OUT_ACTIVE if self.receipt is not None else SUBMODE_PAPER_OUT_IDLE
        if self.await_continue:
            return SUBMODE_WAIT_CONTINUE
        return SUBMODE_PAPER

    def over_24h(self) -> bool:
        if not self.shift_open:
            return False
        if self.shift_expired:
            return True
        opened = self.shift_opened_at
        return opened is not None and datetime.now() - opened > SHIFT_LIMIT

    # -- guards -------------------------------------------------------------------------

    def require_printer(self) -> None:
        if self.paper_out or self.cover_open:
            why = "cover open" if self.cover_open and not self.paper_out else "no receipt paper"
            raise CommandError(DeviceError.NO_RECEIPT_PAPER, why)
        if self.await_continue:
            raise CommandError(DeviceError.WAIT_CONTINUE, "waiting for continue printing")

    def require_fn(self, *, writing: bool) -> None:
        if self.fn_missing:
            raise CommandError(DeviceError.FN_LINK, "FN missing")
        if writing and self.fn_full:
            raise CommandError(DeviceError.FN_STORAGE_FULL, "FN full")

    # -- transitions ------------------------------------------------------------------

    def next_document(self, kind: str, moment: datetime, total: int = 0) -> ClosedDocument:
        self.last_document += 1
        seed = f"{self.last_document}:{kind}:{total}:{moment.isoformat()}".encode()
        sign = zlib.crc32(seed) or 1
        return ClosedDocument(self.last_document, sign, moment, kind, self.shift_number)

    def open_shift(self, moment: datetime) -> ClosedDocument:
        if self.shift_open:
            raise CommandError(DeviceError.WRONG_MODE, "shift already open")
        self.require_fn(writing=True)
        self.shift_open = True
        self.shift_number += 1
        self.shift_opened_at = moment
        self.receipt_number = 0
        document = self.next_document("shift_open", moment)
        self.documents.append(document)
        return document

    def expire_shift(self, moment: datetime) -> None:
        """The shift_over_24h fault: a shift left open since yesterday (opened if closed)."""
        if not self.shift_open:
            self.shift_open = True
            self.shift_number += 1
            self.shift_opened_at = moment
            self.receipt_number = 0
            self.documents.append(self.next_document("shift_open", moment))
        self.shift_expired = True

    def close_shift(self, moment: datetime) -> ClosedDocument:
        if self.receipt is not None or not self.shift_open:
            raise CommandError(DeviceError.WRONG_MODE, "no open shift to close")
        self.require_fn(writing=True)
        document = self.next_document("shift_close", moment)
        self.documents.append(document)
        self.shift_open = False
        self.shift_expired = False
        self.shift_opened_at = None
        return document

    def begin_receipt(self, kind: int, moment: datetime) -> ClosedDocument | None:
        """Open a receipt; opens a closed shift first and returns its report, as FN devices do."""
        if self.receipt is not None:
            raise CommandError(DeviceError.WRONG_MODE, "a receipt is already open")
        if self.over_24h():
            raise CommandError(DeviceError.SHIFT_OVER_24H, "shift over 24 hours")
        if not 0 <= kind <= 3:
            raise CommandError(DeviceError.BAD_PARAMETERS, f"receipt type {kind}")
        self.require_fn(writing=True)
        report = None if self.shift_open else self.open_shift(moment)
        self.receipt = Receipt(kind)
        return report

    def close_receipt(
        self,
        moment: datetime,
        payments: dict[int, int],
        *,
        tax_system: int | None,
        taxes: list[int],
    ) -> ClosedDocument:
        receipt = self.receipt
        if receipt is None:
            raise CommandError(DeviceError.WRONG_MODE, "no open receipt")
        self.require_fn(writing=True)
        paid = sum(payments.values())
        if not receipt.items:
            raise CommandError(DeviceError.ZERO_TOTAL, "no items")
        if paid < receipt.total:
            raise CommandError(DeviceError.PAYMENT_SHORT, "payments below the total")
        non_cash = paid - payments.get(1, 0)
        if non_cash > receipt.total:
            raise CommandError(DeviceError.BAD_PARAMETERS, "non-cash payments above the total")
        document = self.next_document("receipt", moment, receipt.total)
        document.receipt = receipt
        document.payments = {kind: sum_ for kind, sum_ in payments.items() if sum_}
        document.change = paid - receipt.total
        document.tax_system = tax_system
        document.taxes = taxes
        self.documents.append(document)
        self.receipt = None
        self.receipt_number += 1
        return document

    def cancel_receipt(self) -> None:
        if self.receipt is None:
            raise CommandError(DeviceError.WRONG_MODE, "no open receipt to cancel")
        self.receipt = None
