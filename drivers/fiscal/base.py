"""The device-neutral face of a fiscal registrar (ККТ), a UnifiedPOS FiscalPrinter subset.

The fiscal endpoint and the config code only ever see these names, so a second vendor
(ATOL through its local web server) joins later as one module beside `shtrih/` without
touching them.  Every failure says where the fiscal document is (`DocumentState`):
the POS must know whether a receipt was never opened, is still open on the device, or
was closed and is a legal document, because each needs a different next step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from drivers.device import Device, Flag


class DocumentState(StrEnum):
    """Where the fiscal document is, told to the POS on every failure."""

    NOT_OPENED = "not_opened"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class TaxRate(StrEnum):
    """54-FZ VAT rates, named as the POS API accepts them."""

    VAT20 = "vat20"
    VAT10 = "vat10"
    VAT0 = "vat0"
    NONE = "none"
    VAT20_120 = "vat120"
    VAT10_110 = "vat110"


class TaxSystem(StrEnum):
    """The seller's tax system (СНО) recorded in every receipt."""

    OSN = "osn"
    USN_INCOME = "usn_income"
    USN_INCOME_OUTCOME = "usn_income_outcome"
    ESN = "esn"
    PATENT = "patent"


class PaymentKind(StrEnum):
    CASH = "cash"
    ELECTRONIC = "electronic"
    PREPAID = "prepaid"
    CREDIT = "credit"
    OTHER = "other"


@dataclass(frozen=True)
class FiscalItem:
    """One sold position as the fiscal storage (FN) records it."""

    name: str  # cut to 128 chars by the driver
    quantity: Decimal  # up to 6 decimals
    price: Decimal  # money, 2 places
    amount: Decimal  # the line's sum after discounts (what the FN records)
    tax: TaxRate = TaxRate.NONE
    payment_method: int = 4  # 1..7, 4 = full payment (полный расчёт)
    payment_object: int = 1  # 1 = commodity (товар)
    department: int = 1


@dataclass(frozen=True)
class FiscalPayment:
    kind: PaymentKind
    amount: Decimal


@dataclass(frozen=True)
class FiscalResult:
    """What identifies a closed fiscal document to the tax service and the customer."""

    document_number: int  # ФД number
    fiscal_sign: str  # ФП/ФПД, as decimal text
    change: Decimal = Decimal("0")


@dataclass(frozen=True)
class FiscalStatus:
    """A snapshot of the device; `None` / `Flag.UNKNOWN` where the device did not say."""

    mode: int
    submode: int
    mode_text: str  # plain-words name of the device's own mode number
    receipt_open: bool
    shift_open: bool | None
    shift_over_24h: bool | None
    paper: Flag  # TRUE = paper present, FALSE = out
    cover_open: Flag
    fn_present: bool | None
    fn_full: bool | None
    model: str | None  # from the device type
    line_width: int | None  # characters per line of the receipt font


class FiscalError(Exception):
    """Every failure of a fiscal call: the device's code, plain words, and the document's state.

    `str(error)` is the plain-words message, fit for a cashier's screen.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        state: DocumentState = DocumentState.NOT_OPENED,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.state = state

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, code={self.code!r}, state={self.state.value!r})"


class FiscalLinkError(FiscalError):
    """No answer, NAKs or bad checksums past the retry limit, or the port is gone."""


class FiscalPrinter(Device, ABC):
    """The UnifiedPOS FiscalPrinter subset posbridge uses.

    `open()` / `close()` come from `Device` (open the transport; close is idempotent),
    so a registrar is a device like the others: same lifecycle words, same status events.
    Calls are made one at a time; an implementation serialises them on its own lock.
    """

    DEFAULT_MESSAGE_WIDTH = 40

    @abstractmethod
    def status(self) -> FiscalStatus:
        """Ask the device; raises FiscalError if it cannot say."""

    @property
    def message_width(self) -> int:
        """Characters per `print_rec_message` line (the receipt font's width; 40 if unknown)."""
        return self.DEFAULT_MESSAGE_WIDTH

    @abstractmethod
    def begin_fiscal_receipt(self) -> None:
        """Open a sale receipt."""

    @abstractmethod
    def print_rec_item(self, item: FiscalItem) -> None: ...

    @abstractmethod
    def print_rec_message(self, text: str) -> None:
        """One text line inside the open receipt, before the total (where loyalty lines go)."""

    @abstractmethod
    def end_fiscal_receipt(
        self, payments: Sequence[FiscalPayment], tax_system: TaxSystem
    ) -> FiscalResult:
        """Pay and close the receipt; the result identifies the fiscal document."""

    @abstractmethod
    def cancel_fiscal_receipt(self) -> None:
        """Cancel the open receipt (nothing is recorded in the FN); no-op if none is open."""

    @abstractmethod
    def print_normal(self, lines: Sequence[str], *, cut: bool = True) -> None:
        """Non-fiscal text (a test page, a slip)."""

    def last_document(self) -> FiscalResult | None:
        """The last closed fiscal receipt (shift reports skipped), None if the device cannot
        say or has closed none among its last few documents."""
        return None

    def document_watermark(self) -> int | None:
        """The number of the device's last fiscal document of any kind (a fresh FN has its
        registration report), noted before a close: with `receipt_after` it tells whether a
        close whose answer was lost went through.  None if the device cannot say."""
        return None

    def receipt_after(self, watermark: int) -> FiscalResult | None:
        """The first fiscal receipt closed after document `watermark` (shift reports
        skipped), None if there is none.  Raises FiscalError if the device cannot be asked."""
        raise FiscalError(f"{self.name}: this registrar cannot look up its documents")
