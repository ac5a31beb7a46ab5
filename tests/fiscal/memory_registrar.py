"""An in-memory FiscalPrinter, for the faults the real emulator cannot produce on demand:
a close that reaches the device whose answer is lost, a cancel that fails too, a
device that cannot tell its last document.  Everything else is tested on the emulator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from drivers.device import Flag
from drivers.fiscal.base import (
    DocumentState,
    FiscalError,
    FiscalItem,
    FiscalLinkError,
    FiscalPayment,
    FiscalPrinter,
    FiscalResult,
    FiscalStatus,
    TaxSystem,
)


@dataclass
class Paper:
    receipts: list[dict[str, object]] = field(default_factory=list)  # closed documents
    cancelled: int = 0
    receipt: dict[str, object] | None = None  # the open one
    number: int = 100


class MemoryRegistrar(FiscalPrinter):
    def __init__(self, paper: Paper | None = None, *, knows_last: bool = True) -> None:
        super().__init__("memory")
        self.paper = paper or Paper()
        self.knows_last = knows_last
        self.fail: dict[str, FiscalError] = {}  # call name -> raised once
        self.close_then_lose_answer = False  # the close goes through, its answer is lost
        self.calls: list[str] = []

    def _do_open(self) -> None:
        self.calls.append("open")

    def _do_close(self) -> None:
        self.calls.append("close")

    def _step(self, name: str) -> None:
        self.calls.append(name)
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def status(self) -> FiscalStatus:
        self._step("status")
        return FiscalStatus(
            mode=8 if self.paper.receipt else 2,
            submode=0,
            mode_text="receipt open" if self.paper.receipt else "shift open",
            receipt_open=self.paper.receipt is not None,
            shift_open=True,
            shift_over_24h=False,
            paper=Flag.TRUE,
            cover_open=Flag.FALSE,
            fn_present=True,
            fn_full=False,
            model="memory",
            line_width=36,
        )

    @property
    def message_width(self) -> int:
        return 36

    def begin_fiscal_receipt(self) -> None:
        self._step("begin")
        self.paper.receipt = {"items": [], "messages": []}

    def print_rec_item(self, item: FiscalItem) -> None:
        self._step("item")
        assert self.paper.receipt is not None
        self.paper.receipt["items"].append(item)  # type: ignore[attr-defined]

    def print_rec_message(self, text: str) -> None:
        self._step("message")
        assert self.paper.receipt is not None
        self.paper.receipt["messages"].append(text)  # type: ignore[attr-defined]

    def end_fiscal_receipt(
        self, payments: Sequence[FiscalPayment], tax_system: TaxSystem
    ) -> FiscalResult:
        self._step("end")
        assert self.paper.receipt is not None
        self.paper.number += 1
        self.paper.receipt["payments"] = list(payments)
        self.paper.receipts.append(self.paper.receipt)
        self.paper.receipt = None
        if self.close_then_lose_answer:
            self.close_then_lose_answer = False
            raise FiscalLinkError("no answer", state=DocumentState.OPEN)
        return FiscalResult(self.paper.number, str(1000000 + self.paper.number), Decimal("0"))

    def cancel_fiscal_receipt(self) -> None:
        self._step("cancel")
        if self.paper.receipt is not None:
            self.paper.receipt = None
            self.paper.cancelled += 1

    def print_normal(self, lines: Sequence[str], *, cut: bool = True) -> None:
        self._step("normal")

    def last_document(self) -> FiscalResult | None:
        self._step("last")
        if not self.knows_last or self.paper.number == 0:  # 0: a fresh FN, no receipt yet
            return None
        return FiscalResult(self.paper.number, str(1000000 + self.paper.number))

    def document_watermark(self) -> int | None:
        self._step("watermark")
        return self.paper.number if self.knows_last else None

    def receipt_after(self, watermark: int) -> FiscalResult | None:
        self._step("after")
        if not self.knows_last:
            raise FiscalError("memory: the FN cannot be asked")
        if self.paper.number <= watermark:
            return None
        number = watermark + 1  # every document here is a receipt
        return FiscalResult(number, str(1000000 + number))
