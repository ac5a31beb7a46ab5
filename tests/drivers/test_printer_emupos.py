"""Our ESC/POS output read back by emupos, an emulator we did not write, over TCP and a pty.

What it proves: Cyrillic in CP866 prints as Cyrillic (also after ESC @), lines fit 32/42/48
columns, barcodes and QR codes scan (zbarimg reads emupos's PNG), no byte we send is an
unknown command, and DLE EOT status is decoded right for each fault emupos can simulate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emupos_helpers import Emupos, running_emupos, write_profile, zbar_decode

from drivers.device import Flag
from drivers.printer import (
    NetworkConnection,
    PrinterConfig,
    Receipt,
    ReceiptPrinter,
    SerialConnection,
)
from drivers.printer.document import init_sequence

RUSSIAN = [
    "Съешь же ещё этих мягких французских булок",
    "да выпей чаю. ЁЖИК в тумане, №42",
]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emupos]:
    yield from running_emupos(tmp_path_factory.mktemp("emupos"))


def enabled(printer: ReceiptPrinter) -> ReceiptPrinter:
    printer.open()
    printer.claim()
    printer.enable()
    return printer


def tcp_printer(emu: Emupos, config: PrinterConfig | None = None) -> ReceiptPrinter:
    return enabled(ReceiptPrinter("front", NetworkConnection("127.0.0.1", emu.tcp_port), config))


def print_and_read(emu: Emupos, printer: ReceiptPrinter, receipt: Receipt) -> str:
    """Print one receipt, wait until emupos completes it, return its id; no unknown commands."""
    done, unknown = len(emu.receipts_completed()), len(emu.unknown_commands())
    try:
        printer.print_receipt(receipt)
    finally:
        printer.close()
    emu.wait_event("printer.job.completed", done + 1)
    assert emu.unknown_commands()[unknown:] == []
    return emu.receipts_completed()[done]


def printed_lines(emu: Emupos, receipt_id: str) -> list[str]:
    return [line.rstrip() for line in emu.receipt_text(receipt_id).splitlines()]


def russian_receipt() -> Receipt:
    receipt = Receipt().double("ЧЕК", align="center")
    for line in RUSSIAN:
        receipt.text(line)
    return receipt.bold("Итого: 1 234,56").cut()


def test_cyrillic_over_tcp_comes_out_as_cyrillic(emu: Emupos) -> None:
    lines = printed_lines(emu, print_and_read(emu, tcp_printer(emu), russian_receipt()))
    assert "ЧЕК" in lines[0]
    for expected in RUSSIAN:
        assert expected in " ".join(lines)
    assert "Итого: 1 234,56" in lines


def test_cyrillic_over_a_serial_pty(emu: Emupos) -> None:
    printer = enabled(ReceiptPrinter("front", SerialConnection(str(emu.pty_link))))
    lines = printed_lines(emu, print_and_read(emu, printer, russian_receipt()))
    assert all(expected in " ".join(lines) for expected in RUSSIAN)


def test_code_page_is_sent_again_after_every_reset(emu: Emupos) -> None:
    printer = tcp_printer(emu)
    receipt = Receipt().text("до сброса").reset().text("после сброса").reset().text("ещё раз").cut()
    data = printer.render(receipt)
    assert data.count(b"\x1b@") == 3
    assert data.count(init_sequence(printer.target)) == 3  # each ESC @ followed by ESC t 17
    lines = printed_lines(emu, print_and_read(emu, printer, receipt))
    assert "после сброса" in lines and "ещё раз" in lines


def test_initialize_then_raw_cyrillic(emu: Emupos) -> None:
    printer = tcp_printer(emu)
    done = len(emu.receipts_completed())
    printer.initialize()
    printer.write("Сдача 100 руб.\n".encode("cp866") + b"\x1dV\x00")
    printer.close()
    emu.wait_event("printer.job.completed", done + 1)
    assert "Сдача 100 руб." in printed_lines(emu, emu.receipts_completed()[done])


def test_barcode_and_qr_scan_back(emu: Emupos, tmp_path: Path) -> None:
    receipt = (
        Receipt().text("Карта лояльности")
        .barcode("4600000000008", "EAN13")
        .barcode("LOY-12345", "CODE128")
        .qr("https://example.com/loyalty?card=1234")
        .cut()
    )
    receipt_id = print_and_read(emu, tcp_printer(emu), receipt)
    codes = zbar_decode(emu.receipt_png(receipt_id, tmp_path / "receipt.png"))
    assert "EAN-13:4600000000008" in codes
    assert "CODE-128:LOY-12345" in codes
    assert "QR-Code:https://example.com/loyalty?card=1234" in codes


def test_every_block_kind_is_a_known_command(emu: Emupos) -> None:
    receipt = (
        Receipt().double("Магазин").bold("Жирный").text("под", underline=True)
        .text("справа", align="right").pair("Сумма", "10,00").rule("=").feed(2)
        .barcode("46000002", "EAN8").qr("QR").kick_drawer(2).kick_drawer(5).cut(partial=True)
    )
    receipt_id = print_and_read(emu, tcp_printer(emu), receipt)  # asserts no unknown commands
    assert "Жирный" in printed_lines(emu, receipt_id)
    emu.wait_event("drawer.opened")


def test_status_follows_emupos_faults(emu: Emupos) -> None:
    printer = tcp_printer(emu)
    try:
        status = printer.status()
        assert (status.online, status.paper_empty, status.cover_open) == (
            Flag.TRUE, Flag.FALSE, Flag.FALSE,
        )
        assert status.cutter_error is Flag.FALSE and status.recoverable_error is Flag.FALSE
        for fault, flag in [("paper-out", "paper_empty"), ("cover-open", "cover_open"),
                            ("paper-near-end", "paper_near_end")]:
            emu.set_fault(fault, True)
            status = printer.status()
            assert getattr(status, flag) is Flag.TRUE, (fault, status)
            emu.set_fault(fault, False)
            assert getattr(printer.status(), flag) is Flag.FALSE
        emu.set_fault("offline", True)
        assert printer.status().online is Flag.FALSE
        emu.set_fault("offline", False)
        assert printer.status().online is Flag.TRUE
    finally:
        printer.close()


# --- widths and code-page slots need their own emulated printers --------------------------


WIDTHS = [  # emupos head width, our config, the columns that must fit
    (384, PrinterConfig(paper_width_mm=58), 32),
    (384, PrinterConfig(paper_width_mm=58, font="b"), 42),
    (512, PrinterConfig(profile="TM-T88V", paper_width_mm=80), 42),
    (576, PrinterConfig(paper_width_mm=80), 48),
]


@pytest.mark.parametrize(("dots", "config", "columns"), WIDTHS)
def test_lines_fit_the_paper(
    tmp_path: Path, dots: int, config: PrinterConfig, columns: int
) -> None:
    pages = {0: "PC437", 17: "PC866"}
    profile = write_profile(tmp_path / "head.yaml", width_dots=dots, code_pages=pages)
    words = "Бонусы начислены на карту покупателя за каждую покупку в магазине " * 3
    for emu in running_emupos(tmp_path / "emu", profile=str(profile), serial=False):
        printer = tcp_printer(emu, config)
        assert printer.columns == columns
        receipt = Receipt().text(words).rule().pair("Баланс", "1 000,00").cut()
        lines = [line for line in printed_lines(emu, print_and_read(emu, printer, receipt)) if line]
        *text, rule, pair = lines
        assert rule == "-" * columns  # one full-width line: emupos would wrap a longer one
        assert len(pair) == columns and pair.startswith("Баланс") and pair.endswith("1 000,00")
        assert all(len(line) <= columns for line in text)
        assert " ".join(text) == " ".join(words.split())


def test_code_page_slot_override(tmp_path: Path) -> None:
    """A printer whose CP866 is slot 59: the config override is what makes it print right."""
    pages = {0: "PC437", 59: "PC866"}
    profile = write_profile(tmp_path / "p.yaml", width_dots=576, code_pages=pages)
    for emu in running_emupos(tmp_path / "emu", profile=str(profile), serial=False):
        right = tcp_printer(emu, PrinterConfig(code_page_slot=59))
        lines = printed_lines(emu, print_and_read(emu, right, Receipt().text("Привет").cut()))
        assert "Привет" in lines

        wrong = tcp_printer(emu)  # the profile's slot 17 is not CP866 on this printer
        before = len(emu.unknown_commands())
        wrong.print_receipt(Receipt().text("Привет").cut())
        wrong.close()
        emu.wait_event("printer.codepage.unsupported")
        assert len(emu.unknown_commands()) > before
