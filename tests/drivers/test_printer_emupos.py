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
from drivers.printer import PrinterConfig, Receipt, ReceiptPrinter
from drivers.printer.document import init_sequence
from drivers.printer.escpos_link import EscposLink
from drivers.transport.serial import SerialSettings, SerialTransport
from drivers.transport.tcp import TcpTransport

RUSSIAN = [
    "Съешь же ещё этих мягких французских булок",
    "да выпей чаю. ЁЖИК в тумане, №42",
]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emupos]:
    """One emupos for the module: `front` (TM-T20III, 576 dots, TCP and pty) and extra heads."""
    workdir = tmp_path_factory.mktemp("emupos")
    cp866_17 = {0: "PC437", 17: "PC866"}
    extra = {
        "head384": write_profile(workdir / "h384.yaml", width_dots=384, code_pages=cp866_17),
        "head512": write_profile(workdir / "h512.yaml", width_dots=512, code_pages=cp866_17),
        # a model whose CP866 is ESC t 59 and which has no slot 17 at all
        "slot59": write_profile(
            workdir / "s59.yaml", width_dots=576, code_pages={0: "PC437", 59: "PC866"}
        ),
    }
    yield from running_emupos(workdir, extra={k: str(v) for k, v in extra.items()})


def enabled(printer: ReceiptPrinter) -> ReceiptPrinter:
    printer.open()
    printer.claim()
    printer.enable()
    return printer


def tcp_printer(
    emu: Emupos, config: PrinterConfig | None = None, device: str = "front"
) -> ReceiptPrinter:
    transport = TcpTransport("127.0.0.1", emu.ports[device])
    return enabled(ReceiptPrinter(device, transport, config))


def print_and_read(emu: Emupos, printer: ReceiptPrinter, receipt: Receipt) -> str:
    """Print one receipt, wait until emupos completes it, return its id; no unknown commands."""
    device = printer.name  # printers here are named after their emupos device
    done = len(emu.receipts_completed(device))
    unknown = len(emu.unknown_commands(device))
    try:
        printer.print_receipt(receipt)
    finally:
        printer.close()
    emu.wait_event("printer.job.completed", done + 1, device=device)
    assert emu.unknown_commands(device)[unknown:] == []
    return emu.receipts_completed(device)[done]


def printed_lines(emu: Emupos, receipt_id: str, device: str = "front") -> list[str]:
    return [line.rstrip() for line in emu.receipt_text(receipt_id, device).splitlines()]


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
    printer = enabled(ReceiptPrinter("front", SerialTransport(str(emu.pty_link))))
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
    done = len(emu.receipts_completed("front"))
    printer.initialize()
    printer.write("Сдача 100 руб.\n".encode("cp866") + b"\x1dV\x00")
    printer.close()
    emu.wait_event("printer.job.completed", done + 1, device="front")
    assert "Сдача 100 руб." in printed_lines(emu, emu.receipts_completed("front")[done])


def test_barcode_and_qr_scan_back(emu: Emupos, tmp_path: Path) -> None:
    receipt = (
        Receipt()
        .text("Карта лояльности")
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
        Receipt()
        .double("Магазин")
        .bold("Жирный")
        .text("под", underline=True)
        .text("справа", align="right")
        .pair("Сумма", "10,00")
        .rule("=")
        .feed(2)
        .barcode("46000002", "EAN8")
        .qr("QR")
        .kick_drawer(2)
        .kick_drawer(5)
        .cut(partial=True)
    )
    receipt_id = print_and_read(emu, tcp_printer(emu), receipt)  # asserts no unknown commands
    assert "Жирный" in printed_lines(emu, receipt_id)
    emu.wait_event("drawer.opened")


def test_status_follows_emupos_faults(emu: Emupos) -> None:
    printer = tcp_printer(emu)
    try:
        status = printer.status()
        assert (status.online, status.paper_empty, status.cover_open) == (
            Flag.TRUE,
            Flag.FALSE,
            Flag.FALSE,
        )
        assert status.cutter_error is Flag.FALSE and status.recoverable_error is Flag.FALSE
        for fault, flag in [
            ("paper-out", "paper_empty"),
            ("cover-open", "cover_open"),
            ("paper-near-end", "paper_near_end"),
        ]:
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


# --- widths and code-page slots, on the extra emulated heads ---------------------------------


WIDTHS = [  # emupos device (head width), our config, the columns that must fit
    ("head384", PrinterConfig(paper_width_mm=58), 32),
    ("head384", PrinterConfig(paper_width_mm=58, font="b"), 42),
    ("head512", PrinterConfig(profile="TM-T88V", paper_width_mm=80), 42),
    ("front", PrinterConfig(paper_width_mm=80), 48),
]


@pytest.mark.parametrize(("device", "config", "columns"), WIDTHS)
def test_lines_fit_the_paper(emu: Emupos, device: str, config: PrinterConfig, columns: int) -> None:
    words = "Бонусы начислены на карту покупателя за каждую покупку в магазине " * 3
    printer = tcp_printer(emu, config, device)
    assert printer.columns == columns
    receipt = Receipt().text(words).rule().pair("Баланс", "1 000,00").cut()
    receipt_id = print_and_read(emu, printer, receipt)
    lines = [line for line in printed_lines(emu, receipt_id, device) if line]
    *text, rule, pair = lines
    assert rule == "-" * columns  # one full-width line: emupos would wrap a longer one
    assert len(pair) == columns and pair.startswith("Баланс") and pair.endswith("1 000,00")
    assert all(len(line) <= columns for line in text)
    assert " ".join(text) == " ".join(words.split())


def test_code_page_slot_override(emu: Emupos) -> None:
    """A printer whose CP866 is slot 59: the config override is what makes it print right."""
    right = tcp_printer(emu, PrinterConfig(code_page_slot=59), "slot59")
    receipt_id = print_and_read(emu, right, Receipt().text("Привет").cut())
    assert "Привет" in printed_lines(emu, receipt_id, "slot59")

    wrong = tcp_printer(emu, device="slot59")  # the profile's slot 17 is not CP866 here
    done = len(emu.receipts_completed("slot59"))
    wrong.print_receipt(Receipt().text("Привет").cut())
    wrong.close()
    emu.wait_event("printer.codepage.unsupported", device="slot59")
    # the job still completes; wait for it so no event of this test lands in the next one
    emu.wait_event("printer.job.completed", done + 1, device="slot59")


def test_python_escpos_generator_over_a_serial_transport(emu: Emupos, tmp_path: Path) -> None:
    """python-escpos generates, EscposLink writes through our SerialTransport, emupos reads."""
    transport = SerialTransport(str(emu.pty_link), SerialSettings(115200))
    link = EscposLink(transport, profile="TM-T20II")
    done = len(emu.receipts_completed("front"))
    try:
        link.hw("INIT")
        link.set(align="center", bold=True)
        link.textln("ESCPOS OVER TRANSPORT")
        link.set(align="left", bold=False)
        link.qr("https://example.com/r/99", native=True, size=6)
        link.cut()
    finally:
        link.close()
    emu.wait_event("printer.job.completed", done + 1, device="front")
    receipt_id = emu.receipts_completed("front")[done]
    assert "ESCPOS OVER TRANSPORT" in printed_lines(emu, receipt_id)
    codes = zbar_decode(emu.receipt_png(receipt_id, tmp_path / "escpos.png"))
    assert "QR-Code:https://example.com/r/99" in codes
