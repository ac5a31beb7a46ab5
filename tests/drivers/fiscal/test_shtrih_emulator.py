"""ShtrihFiscalPrinter against the registrar emulator, over a pty and over TCP.

The emulator (sandbox/registrar) frames on its own, so these catch a framing or layout
bug in the driver; every fault it can inject is driven through the driver here, and each
failure must say in plain words what is wrong and where the fiscal document is.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from drivers.device import Flag
from drivers.fiscal.base import (
    DocumentState,
    FiscalError,
    FiscalItem,
    FiscalLinkError,
    FiscalPayment,
    PaymentKind,
    TaxRate,
    TaxSystem,
)
from drivers.fiscal.shtrih import ShtrihFiscalPrinter, replies
from drivers.fiscal.shtrih import commands as cmd
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport

registrar = pytest.importorskip("sandbox.registrar")
faults = pytest.importorskip("sandbox.registrar.faults")
RegistrarEmulator = registrar.RegistrarEmulator
Fault = faults.Fault

MILK = FiscalItem(
    "Молоко 3,2% 1 л", Decimal("2"), Decimal("89.90"), Decimal("179.80"), TaxRate.VAT10
)
BREAD = FiscalItem("Хлеб", Decimal("0.5"), Decimal("45.00"), Decimal("22.50"), TaxRate.VAT20)
CASH = [FiscalPayment(PaymentKind.CASH, Decimal("300.00"))]


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[object, ShtrihFiscalPrinter]]:
    emulator = RegistrarEmulator()
    if request.param == "pty":
        transport: SerialTransport | TcpTransport = SerialTransport(emulator.start_pty())
    else:
        transport = TcpTransport("127.0.0.1", emulator.start_tcp(port=0))
    printer = ShtrihFiscalPrinter("kkt", transport, timeout=0.5, retries=2, answer_timeout=1.0)
    printer.open()
    try:
        yield emulator, printer
    finally:
        printer.close()
        emulator.stop()


def sell(printer: ShtrihFiscalPrinter, messages: tuple[str, ...] = ()) -> None:
    printer.begin_fiscal_receipt()
    printer.print_rec_item(MILK)
    printer.print_rec_item(BREAD)
    for line in messages:
        printer.print_rec_message(line)


def test_status_of_a_healthy_registrar(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    _, printer = rig
    status = printer.status()
    assert status.paper is Flag.TRUE and status.cover_open is Flag.FALSE
    assert status.receipt_open is False and status.shift_over_24h is False
    assert status.fn_present is True and status.fn_full is False
    assert status.model and "ШТРИХ" in status.model.upper()
    assert status.line_width == printer.message_width == 48
    assert status.mode_text


def test_full_sale_with_loyalty_lines_inside(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    lines = ("Бонусы начислено: 20", "Баланс бонусов: 1 234,50", "Карта 500000******0004")
    sell(printer, lines)
    assert printer.document_state is DocumentState.OPEN
    result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    assert printer.document_state is DocumentState.CLOSED
    closed = emulator.documents[-1]  # type: ignore[attr-defined]
    assert result.document_number == closed["number"]
    assert result.fiscal_sign == str(closed["sign"])
    assert result.change == Decimal("97.70")
    for line in lines:
        assert line in closed["messages"]
    paper = emulator.paper_text()  # type: ignore[attr-defined]
    total_at = paper.index("ИТОГ")
    assert all(0 <= paper.index(line) < total_at for line in lines), paper
    assert paper.index("Хлеб") < paper.index(lines[0])
    assert printer.last_document() == type(result)(result.document_number, result.fiscal_sign)


def test_message_longer_than_the_line_wraps_and_loses_nothing(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    emulator, printer = rig
    long = "Спасибо за покупку! Ваши бонусы сгорят через 30 дней, если не потратить"
    sell(printer, (long,))
    printer.end_fiscal_receipt(CASH, TaxSystem.USN_INCOME)
    printed = [x for x in emulator.paper_text().splitlines() if x.strip()]  # type: ignore[attr-defined]
    assert all(len(x) <= 48 for x in printed)
    messages = emulator.documents[-1]["messages"]  # type: ignore[attr-defined]
    assert len(messages) == 2 and " ".join(messages) == long


def test_print_normal_and_cut(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer.print_normal(["ТЕСТОВАЯ СТРАНИЦА", "posbridge"])
    lines = emulator.paper  # type: ignore[attr-defined]
    assert [x.text for x in lines[-3:-1]] == ["ТЕСТОВАЯ СТРАНИЦА", "posbridge"]
    assert lines[-1].kind == "cut"
    assert emulator.documents == []  # type: ignore[attr-defined]


def test_cancel_leaves_no_document(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    sell(printer)
    before = len(emulator.documents)  # type: ignore[attr-defined]
    printer.cancel_fiscal_receipt()
    assert printer.document_state is DocumentState.CANCELLED
    assert len(emulator.documents) == before  # type: ignore[attr-defined]
    assert printer.status().receipt_open is False
    printer.cancel_fiscal_receipt()  # nothing open: a no-op
    with pytest.raises(FiscalError, match="no fiscal receipt is open") as caught:
        printer.print_rec_item(MILK)
    assert caught.value.state is DocumentState.CANCELLED


@pytest.mark.parametrize(
    "fault",
    [
        lambda: Fault.nak(),
        lambda: Fault.bad_lrc(),
        lambda: Fault.silence(1),
        lambda: Fault.drop_answer(),
    ],
    ids=["nak", "bad_lrc", "silence", "drop_answer"],
)
def test_link_faults_on_the_close_are_absorbed_without_a_second_document(
    rig: tuple[object, ShtrihFiscalPrinter], fault: object
) -> None:
    emulator, printer = rig
    sell(printer, ("Бонусы: 5",))
    emulator.inject(fault())  # type: ignore[attr-defined,operator]
    before = len(emulator.documents)  # type: ignore[attr-defined]
    result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    assert len(emulator.documents) == before + 1  # type: ignore[attr-defined]
    assert result.document_number == emulator.documents[-1]["number"]  # type: ignore[attr-defined]


def test_lasting_silence_is_a_link_error_saying_the_receipt_is_open(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    emulator, printer = rig
    sell(printer)
    emulator.inject(Fault.silence(50))  # type: ignore[attr-defined]
    with pytest.raises(FiscalLinkError, match="registrar") as caught:
        printer.print_rec_message("Бонусы: 5")
    assert caught.value.state is DocumentState.OPEN
    assert caught.value.code is None
    emulator.clear_faults()  # type: ignore[attr-defined]
    printer.cancel_fiscal_receipt()
    assert printer.document_state is DocumentState.CANCELLED


def test_error_code_on_a_sale_line(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer.begin_fiscal_receipt()
    emulator.inject(Fault.error(0xFF46, 0x33))  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="wrong parameters") as caught:
        printer.print_rec_item(MILK)
    assert (caught.value.code, caught.value.state) == (0x33, DocumentState.OPEN)
    printer.print_rec_item(MILK)  # the fault was used up; the receipt is still usable
    printer.end_fiscal_receipt(CASH, TaxSystem.OSN)


def test_error_on_the_close_keeps_the_receipt_open(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    _, printer = rig
    sell(printer)
    with pytest.raises(FiscalError, match="payments are less than the receipt total") as caught:
        printer.end_fiscal_receipt([FiscalPayment(PaymentKind.CASH, Decimal("1"))], TaxSystem.OSN)
    assert (caught.value.code, caught.value.state) == (0x45, DocumentState.OPEN)
    assert printer.end_fiscal_receipt(CASH, TaxSystem.OSN).document_number > 0


def test_paper_out(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer.begin_fiscal_receipt()
    emulator.inject(Fault.paper_out())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="paper out") as caught:
        printer.print_rec_message("Бонусы: 5")
    assert (caught.value.code, caught.value.state) == (0x6B, DocumentState.OPEN)
    assert printer.status().paper is Flag.FALSE


def test_cover_open_is_told_apart_from_paper_out(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    emulator.inject(Fault.cover_open())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="cover open") as caught:
        printer.print_normal(["x"])
    assert caught.value.state is DocumentState.NOT_OPENED
    assert printer.status().cover_open is Flag.TRUE


def test_shift_over_24_hours(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    sell(printer)
    printer.end_fiscal_receipt(CASH, TaxSystem.OSN)  # a shift is open now
    emulator.inject(Fault.shift_over_24h())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="shift over 24 hours") as caught:
        printer.begin_fiscal_receipt()
    assert caught.value.state is DocumentState.NOT_OPENED
    status = printer.status()
    assert status.shift_over_24h is True and status.shift_open is True


def test_fn_full(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    emulator.inject(Fault.fn_full())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match=r"fiscal storage \(FN\) full") as caught:
        printer.begin_fiscal_receipt()
    assert caught.value.state is DocumentState.NOT_OPENED
    assert printer.status().fn_full is True


def test_fn_missing(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    emulator.inject(Fault.fn_missing())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match=r"fiscal storage \(FN\) missing") as caught:
        printer.begin_fiscal_receipt()
    assert caught.value.state is DocumentState.NOT_OPENED
    assert printer.status().fn_present is False


def test_fn_fault_on_the_close_says_the_receipt_is_open(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    emulator, printer = rig
    sell(printer)
    emulator.inject(Fault.fn_missing())  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="missing") as caught:
        printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    assert caught.value.state is DocumentState.OPEN


def test_wrong_password_and_wrong_mode(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer._password = 12345  # a config typo, as a technician makes it
    with pytest.raises(FiscalError, match="wrong operator password") as caught:
        printer.begin_fiscal_receipt()
    assert caught.value.code == 0x4F
    printer._password = 30
    emulator.inject(Fault.error(0x8D, 0x73))  # type: ignore[attr-defined]
    with pytest.raises(FiscalError, match="wrong mode") as caught:
        printer.begin_fiscal_receipt()
    assert caught.value.state is DocumentState.NOT_OPENED


def test_begin_while_the_device_holds_a_receipt_says_open(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    _, printer = rig
    sell(printer)
    other = ShtrihFiscalPrinter("kkt2", printer.transport, timeout=0.5, retries=2)
    with pytest.raises(FiscalError) as caught:
        other.begin_fiscal_receipt()  # a fresh driver (after a crash) finds it open
    assert caught.value.state is DocumentState.OPEN
    other.cancel_fiscal_receipt()
    assert other.status().receipt_open is False


class CountingTcp(TcpTransport):
    """Counts ENQs and frames written: on a healthy link each command costs one of each."""

    enqs = frames = 0

    def write(self, data: bytes) -> None:
        self.enqs += data == b"\x05"
        self.frames += data[:1] == b"\x02"
        super().write(data)


def test_stray_ff_after_ack_over_tcp() -> None:
    with RegistrarEmulator(stray_ff=True) as emulator:
        port = emulator.start_tcp(port=0)
        transport = CountingTcp("127.0.0.1", port)
        printer = ShtrihFiscalPrinter("kkt", transport, timeout=0.5)
        printer.open()
        try:
            for _ in range(2):  # every answer is followed by 0xFF; nothing may go out of step
                sell(printer, ("Бонусы: 5",))
                result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
                assert result.document_number == emulator.documents[-1]["number"]
                assert printer.status().receipt_open is False
        finally:
            printer.close()
    assert len(emulator.documents) == 2
    assert transport.enqs == transport.frames > 10  # not one retry caused by the 0xFF


def test_non_fiscal_text_is_refused_inside_an_open_receipt(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    _, printer = rig
    sell(printer)
    with pytest.raises(FiscalError, match="non-fiscal text would land in it") as caught:
        printer.print_normal(["x"])
    assert caught.value.state is DocumentState.OPEN
    printer.cancel_fiscal_receipt()


def test_calls_before_open_name_the_fix() -> None:
    printer = ShtrihFiscalPrinter("kkt", TcpTransport("127.0.0.1", 7778))
    with pytest.raises(FiscalLinkError, match=r"^registrar is not open \(call open\(\) first\)"):
        printer.status()
    assert printer.message_width == 40  # unknown until the device is asked


def test_bold_and_font_lines_reach_the_paper(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer.direct_io(cmd.bold_string("ЖИРНЫЙ"))
    printer.direct_io(cmd.font_string("Шрифт 2", font=2))
    printer.direct_io(cmd.print_string("только журнал", cmd.JOURNAL))
    printer.direct_io(cmd.cut(partial=True))
    lines = emulator.paper  # type: ignore[attr-defined]
    assert [(x.kind, x.text) for x in lines[-3:]] == [
        ("bold", "ЖИРНЫЙ"),
        ("font", "Шрифт 2"),
        ("cut", "partial"),
    ]


def test_pre_fn_sale_and_close(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    printer.direct_io(cmd.open_receipt(0))
    printer.direct_io(cmd.sale("Хлеб", Decimal("2"), Decimal("45.00"), TaxRate.VAT10, 1))
    change = replies.parse_close(printer.direct_io(cmd.close(Decimal("100.00"))))
    assert change == 1000  # kopecks
    (document,) = emulator.documents  # type: ignore[attr-defined]
    assert document["items"][0]["name"] == "Хлеб"


def test_a_lost_port_is_reopened_on_the_next_call(rig: tuple[object, ShtrihFiscalPrinter]) -> None:
    emulator, printer = rig
    before = len(emulator.documents)  # type: ignore[attr-defined]
    printer.transport.close()  # what a TCP reset or a replugged adapter leaves behind
    sell(printer, ("Бонусы: 5",))
    assert printer.end_fiscal_receipt(CASH, TaxSystem.OSN).document_number > 0
    assert printer.transport.is_open
    assert len(emulator.documents) == before + 1  # type: ignore[attr-defined]


def test_last_document_is_the_last_receipt_never_a_shift_report(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    emulator, printer = rig
    assert printer.last_document() is None  # a fresh FN: only its registration report
    printer.begin_fiscal_receipt()  # opens the shift: a shift report is the last FD now
    printer.cancel_fiscal_receipt()
    assert printer.last_document() is None
    sell(printer)
    result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    printer.direct_io(cmd.Command(0x41, b"", cmd.Password.ADMIN, prints=True))  # Z-report
    printer.begin_fiscal_receipt()  # the next shift's opening report
    printer.cancel_fiscal_receipt()
    kinds = [d["kind"] for d in emulator.fiscal_documents]  # type: ignore[attr-defined]
    assert kinds[-3:] == ["receipt", "shift_close", "shift_open"]
    last = printer.last_document()
    assert last is not None
    assert (last.document_number, last.fiscal_sign) == (result.document_number, result.fiscal_sign)


def test_a_receipt_after_a_watermark_is_found_on_a_fresh_fn_past_the_shift_opening(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    """What a retry after a lost close asks: the watermark is noted before the print."""
    _, printer = rig
    mark = printer.document_watermark()
    assert mark == 1  # a fresh FN: its registration report only
    assert printer.receipt_after(mark) is None
    sell(printer)  # opens the shift first: FD 2 is the shift report, FD 3 the receipt
    result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    found = printer.receipt_after(mark)
    assert found is not None
    assert (found.document_number, found.fiscal_sign) == (3, result.fiscal_sign)
    assert printer.receipt_after(printer.document_watermark() or 0) is None


def test_too_many_documents_after_a_watermark_are_not_guessed_at(
    rig: tuple[object, ShtrihFiscalPrinter],
) -> None:
    _, printer = rig
    for _ in range(10):
        sell(printer)
        printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
    with pytest.raises(FiscalError, match="cannot be told"):
        printer.receipt_after(1)


def test_a_cashier_password_other_than_the_admins_sells_and_closes() -> None:
    """The close (0xFF45) goes with the operator's password, as the vendor's driver sends it."""
    with RegistrarEmulator(password=1, admin_password=30) as emulator:
        printer = ShtrihFiscalPrinter(
            "kkt", TcpTransport("127.0.0.1", emulator.start_tcp(port=0)), password=1, timeout=0.5
        )
        printer.open()
        try:
            sell(printer, ("Бонусы: 5",))
            result = printer.end_fiscal_receipt(CASH, TaxSystem.OSN)
        finally:
            printer.close()
    assert result.document_number == emulator.documents[-1]["number"]
