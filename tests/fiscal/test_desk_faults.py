"""The desk's rules for faults only an in-memory registrar can stage on demand: a close
whose answer is lost, a cancel that fails too, a device that cannot tell its last
document, and a process that dies mid-print.  Real SQLite records underneath."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.fiscal.desk import FiscalDesk, FiscalPrintError, Registrar
from bridge.fiscal.records import FiscalRecord, FiscalStore, Stage
from bridge.fiscal.sale import FiscalRequest
from bridge.loyalty.protocol import local_now
from bridge.service.cheque import Line, RegisterCheque
from drivers.fiscal.base import (
    DocumentState,
    FiscalError,
    FiscalLinkError,
    FiscalPayment,
    PaymentKind,
)
from tests.fiscal.memory_registrar import MemoryRegistrar, Paper

CASH = FiscalRequest([FiscalPayment(PaymentKind.CASH, Decimal("400.00"))])


def cheque(state: str = "confirmed") -> RegisterCheque:
    return RegisterCheque(
        id="c1",
        number="N-1",
        opened_at=local_now(),
        lines=[
            Line("1001", "Milk", Decimal("89.90"), Decimal("2"), Decimal("179.80")),
            Line("5001", "Soap", Decimal("150.00"), Decimal("1"), Decimal("150.00")),
        ],
        card="2775000000012",
        state=state,  # type: ignore[arg-type]
        balance_before=Decimal("100"),
        accrued=Decimal("16.48"),
        balance_after=Decimal("116.48"),
    )


class Bench:
    """A desk on one shared paper; each print connects a fresh driver, as the service does."""

    def __init__(self, tmp_path: Path, **kw: bool) -> None:
        self.paper = Paper()
        self.drivers: list[MemoryRegistrar] = []
        self.next: MemoryRegistrar | None = None
        self.kw = kw
        self.store = FiscalStore(tmp_path / "cheques.sqlite")
        self.desk = FiscalDesk(Registrar("kkt", self.connect), self.store, language="ru")

    def connect(self) -> MemoryRegistrar:
        driver = self.next or MemoryRegistrar(self.paper, **self.kw)
        self.next = None
        self.drivers.append(driver)
        return driver

    def prepared(self) -> MemoryRegistrar:
        self.next = MemoryRegistrar(self.paper, **self.kw)
        return self.next


def test_success_then_retry_answers_the_same_without_printing(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    first = bench.desk.print_cheque(cheque(), CASH)
    assert first["state"] == "closed" and first["documentNumber"] == 101
    assert any("116,48" in line for line in first["lines"])
    again = bench.desk.print_cheque(cheque(), CASH)
    assert again["replayed"] and again["documentNumber"] == first["documentNumber"]
    assert again["fiscalSign"] == first["fiscalSign"] and again["lines"] == first["lines"]
    assert len(bench.paper.receipts) == 1
    assert bench.drivers[1:] == []  # the retry never connected to the device


def test_a_cheque_not_confirmed_is_refused_before_the_device(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    with pytest.raises(FiscalPrintError) as caught:
        bench.desk.print_cheque(cheque("calculated"), CASH)
    assert caught.value.code == "not_confirmed" and caught.value.status == 409
    assert bench.drivers == []


def test_lost_close_answer_is_adopted_not_printed_twice(tmp_path: Path) -> None:
    """The close reached the device, its answer did not: the receipt is not open any
    more and the last document moved past the one noted before, so it is ours."""
    bench = Bench(tmp_path)
    bench.prepared().close_then_lose_answer = True
    answer = bench.desk.print_cheque(cheque(), CASH)
    assert answer["state"] == "closed" and answer["documentNumber"] == 101
    assert len(bench.paper.receipts) == 1 and bench.paper.cancelled == 0
    assert bench.desk.print_cheque(cheque(), CASH)["replayed"]


def test_lost_close_answer_on_a_fresh_fn_is_adopted_too(tmp_path: Path) -> None:
    """No receipt on the device before ours: there is no last receipt to note, but the
    watermark (the FN's last document of any kind) still tells ours apart."""
    bench = Bench(tmp_path)
    bench.paper.number = 0
    bench.prepared().close_then_lose_answer = True
    answer = bench.desk.print_cheque(cheque(), CASH)
    assert answer["state"] == "closed" and answer["documentNumber"] == 1
    assert len(bench.paper.receipts) == 1 and bench.paper.cancelled == 0


def test_cancel_failing_too_reports_open_and_the_retry_cancels_first(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    driver = bench.prepared()
    driver.fail["item"] = FiscalError("wrong parameters in the command", code=0x33)
    driver.fail["cancel"] = FiscalLinkError("no answer", state=DocumentState.OPEN)
    with pytest.raises(FiscalPrintError) as caught:
        bench.desk.print_cheque(cheque(), CASH)
    assert caught.value.state is DocumentState.OPEN
    assert "still open" in caught.value.cashier
    assert bench.paper.receipt is not None  # really left open, and said so
    answer = bench.desk.print_cheque(cheque(), CASH)
    assert answer["state"] == "closed"
    assert bench.paper.cancelled == 1 and len(bench.paper.receipts) == 1
    assert bench.drivers[1].calls.index("cancel") < bench.drivers[1].calls.index("begin")


def test_crash_mid_print_cancels_the_open_receipt_before_printing_again(tmp_path: Path) -> None:
    """A record left `printing` (the process died with a receipt open on the device)."""
    bench = Bench(tmp_path)
    bench.paper.receipt = {"items": ["half a receipt"], "messages": []}
    bench.store.put(FiscalRecord("c1", Stage.PRINTING, "kkt", attempts=1, last_before=100))
    answer = bench.desk.print_cheque(cheque(), CASH)
    assert answer["state"] == "closed" and not answer["replayed"]
    assert bench.paper.cancelled == 1 and len(bench.paper.receipts) == 1


def test_crash_after_the_close_is_found_by_the_last_document(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.paper.number = 101  # the device closed FD 101 before the process died
    bench.paper.receipts.append({"items": [], "messages": ["ours"]})
    bench.store.put(
        FiscalRecord(
            "c1", Stage.CLOSING, "kkt", attempts=1, last_before=100, answer={"lines": ["x"]}
        )
    )
    answer = bench.desk.print_cheque(cheque(), CASH)
    assert answer["documentNumber"] == 101 and answer["lines"] == ["x"]
    assert len(bench.paper.receipts) == 1  # nothing printed again
    assert "begin" not in bench.drivers[0].calls


def test_unknown_outcome_is_said_and_never_printed_over(tmp_path: Path) -> None:
    bench = Bench(tmp_path, knows_last=False)
    bench.store.put(FiscalRecord("c1", Stage.CLOSING, "kkt", attempts=1, last_before=100))
    for _ in range(2):  # every retry says the same; none prints
        with pytest.raises(FiscalPrintError) as caught:
            bench.desk.print_cheque(cheque(), CASH)
        assert caught.value.code == "registrar_outcome_unknown" and caught.value.state is None
    assert bench.paper.receipts == []
    record = bench.store.get("c1")
    assert record is not None and record.stage is Stage.CLOSING


def test_a_receipt_opened_by_someone_else_is_not_cancelled(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    bench.paper.receipt = {"items": ["the POS's own"], "messages": []}
    with pytest.raises(FiscalPrintError) as caught:
        bench.desk.print_cheque(cheque(), CASH)
    assert caught.value.code == "registrar_wrong_mode"
    assert bench.paper.receipt is not None and bench.paper.cancelled == 0


def test_the_record_is_on_disk_before_the_device_is_touched(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    seen: list[FiscalRecord | None] = []
    driver = bench.prepared()
    original = driver.status

    def status() -> object:
        seen.append(FiscalStore(tmp_path / "cheques.sqlite").get("c1"))
        return original()

    driver.status = status  # type: ignore[method-assign,assignment]
    bench.desk.print_cheque(cheque(), CASH)
    assert seen and seen[0] is not None and seen[0].stage is Stage.PRINTING


def test_records_file_is_private(tmp_path: Path) -> None:
    Bench(tmp_path)
    assert (tmp_path / "cheques.sqlite").stat().st_mode & 0o777 == 0o600


def test_a_receipt_left_open_is_still_reported_open_while_the_link_is_down(
    tmp_path: Path,
) -> None:
    bench = Bench(tmp_path)
    driver = bench.prepared()
    driver.fail["item"] = FiscalError("wrong parameters in the command", code=0x33)
    driver.fail["cancel"] = FiscalLinkError("no answer", state=DocumentState.OPEN)
    with pytest.raises(FiscalPrintError):
        bench.desk.print_cheque(cheque(), CASH)
    bench.prepared().fail["status"] = FiscalLinkError("no answer")  # a fresh driver: NOT_OPENED
    with pytest.raises(FiscalPrintError) as caught:
        bench.desk.print_cheque(cheque(), CASH)
    assert caught.value.code == "registrar_unreachable" and caught.value.state is DocumentState.OPEN
    assert bench.desk.print_cheque(cheque(), CASH)["state"] == "closed"  # link back: cancel, print
    assert bench.paper.cancelled == 1 and len(bench.paper.receipts) == 1


def test_a_driver_that_cannot_be_built_is_a_clear_refusal(tmp_path: Path) -> None:
    def broken() -> MemoryRegistrar:
        raise ValueError("registrar kkt: the Shtrih-M driver is not available")

    store = FiscalStore(tmp_path / "cheques.sqlite")
    desk = FiscalDesk(Registrar("kkt", broken), store)
    with pytest.raises(FiscalPrintError) as caught:
        desk.print_cheque(cheque(), CASH)
    assert caught.value.code == "no_registrar" and "not available" in str(caught.value)
    assert store.get("c1") is None  # nothing recorded: nothing was touched


class FailingStore(FiscalStore):
    """The disk under the cheque file fails at the `n`th write (full, read-only)."""

    def __init__(self, path: Path, n: int) -> None:
        super().__init__(path)
        self.left = n

    def put(self, record: FiscalRecord) -> None:
        self.left -= 1
        if self.left == 0:
            raise sqlite3.OperationalError("database or disk is full")
        super().put(record)


@pytest.mark.parametrize(("n", "state"), [(1, "not_opened"), (2, "not_opened"), (3, "cancelled")])
def test_a_record_that_cannot_be_written_prints_nothing(tmp_path: Path, n: int, state: str) -> None:
    """Before the device (1), before the receipt (2), before the close (3): whatever was
    opened is cancelled, so no fiscal document exists that a retry could not account for."""
    paper = Paper()
    store = FailingStore(tmp_path / "cheques.sqlite", n)
    desk = FiscalDesk(Registrar("kkt", lambda: MemoryRegistrar(paper)), store)
    with pytest.raises(FiscalPrintError) as caught:
        desk.print_cheque(cheque(), CASH)
    assert caught.value.code == "fiscal_records_unavailable" and caught.value.status == 503
    assert caught.value.state is not None and caught.value.state.value == state
    assert paper.receipts == [] and paper.receipt is None


def test_a_document_closed_but_not_recorded_is_still_answered(tmp_path: Path) -> None:
    paper = Paper()
    store = FailingStore(tmp_path / "cheques.sqlite", 4)  # the write after the close
    desk = FiscalDesk(Registrar("kkt", lambda: MemoryRegistrar(paper)), store)
    answer = desk.print_cheque(cheque(), CASH)
    assert answer["documentNumber"] == 101 and len(paper.receipts) == 1
    again = desk.print_cheque(cheque(), CASH)  # on disk: closing; the device says FD 101
    assert again["documentNumber"] == 101 and len(paper.receipts) == 1
