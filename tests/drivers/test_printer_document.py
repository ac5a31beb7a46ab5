"""Profiles, config validation and the receipt document (rendering checked by emupos elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.device import NotClaimedError
from drivers.printer import (
    DocumentError,
    PrinterConfig,
    PrinterOffline,
    PrinterProfile,
    ProfileError,
    Receipt,
    ReceiptPrinter,
    RenderTarget,
    render_escpos,
    render_text,
)
from drivers.printer.document import clean_text
from drivers.transport.file import FileTransport

try:
    from tests.drivers.memory_transport import MemoryTransport
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    from memory_transport import MemoryTransport  # type: ignore[no-redef,import-not-found]

# --- profiles and config ----------------------------------------------------------------------


def test_profile_comes_from_the_capabilities_database() -> None:
    profile = PrinterProfile.named("TM-T88V")
    assert profile.vendor == "Epson"
    assert profile.slot_for("cp866") == 17
    assert profile.supports("qrCode")


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown printer profile 'TM-NOPE'.*TM-T88V"):
        PrinterProfile.named("TM-NOPE")


@pytest.mark.parametrize(
    ("config", "columns"),
    [
        (PrinterConfig(paper_width_mm=58), 32),
        (PrinterConfig(paper_width_mm=58, font="b"), 42),
        (PrinterConfig(paper_width_mm=80), 48),
        (PrinterConfig(paper_width_mm=80, font="b"), 64),
        (PrinterConfig(profile="TM-T88V", paper_width_mm=80), 42),  # 512-dot head
        (PrinterConfig(profile="POS-5890", paper_width_mm=58), 32),
        (PrinterConfig(profile="TM-T88V", paper_width_mm=58), 32),  # profile is for 80 mm
        (PrinterConfig(columns=40), 40),
    ],
)
def test_columns(config: PrinterConfig, columns: int) -> None:
    assert RenderTarget.from_config(config).columns == columns


def test_code_page_slot_from_profile_and_override() -> None:
    assert RenderTarget.from_config(PrinterConfig()).code_page_slot == 17
    assert RenderTarget.from_config(PrinterConfig(code_page_slot=59)).code_page_slot == 59
    with pytest.raises(ProfileError, match=r"no ESC t slot for CP866.*code_page_slot"):
        RenderTarget.from_config(PrinterConfig(profile="simple"))
    assert RenderTarget.from_config(PrinterConfig(profile="simple", code_page_slot=7))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"paper_width_mm": 60}, "paper_width_mm"),
        ({"font": "c"}, "font"),
        ({"code_page": "CP9999"}, "code_page"),
        ({"code_page_slot": 256}, "code_page_slot"),
        ({"colums": 42}, "colums"),
    ],
)
def test_bad_config_names_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        PrinterConfig.model_validate(fields)


# --- the document -----------------------------------------------------------------------------

TARGET = RenderTarget.from_config(PrinterConfig(paper_width_mm=58))


def test_text_is_cp866_on_the_wire() -> None:
    data = render_escpos(Receipt().text("Ёлка №1"), TARGET)
    assert "Ёлка №1\n".encode("cp866") in data
    assert data.startswith(b"\x1b@\x1bt\x11")


def test_control_bytes_in_text_never_become_commands() -> None:
    data = render_escpos(Receipt().text("Иван\x1b@\x1dV\x00Петров"), TARGET)
    assert data.count(b"\x1b@") == 1 and b"\x1dV" not in data
    assert "Иван @ V Петров\n".encode("cp866") in data


def test_characters_outside_the_code_page() -> None:
    assert clean_text("«Цена» — 10 ₽") == '"Цена" - 10 р.'
    data = render_escpos(Receipt().text("€ 5"), TARGET)
    assert b"? 5\n" in data  # replaced, never an exception


def test_pair_layout() -> None:
    assert render_text(Receipt().pair("Итого", "99,00"), 20) == ["Итого          99,00"]
    lines = render_text(Receipt().pair("Очень длинное название товара", "1,00"), 20)
    assert lines[-1].endswith("1,00") and len(lines[-1]) == 20
    assert all(len(line) <= 20 for line in lines)
    assert " ".join(lines).split()[:4] == ["Очень", "длинное", "название", "товара"]


def test_double_text_wraps_at_half_width() -> None:
    lines = render_text(Receipt().double("СКИДКА ДНЯ НА ВСЁ", align="left"), 32)
    assert lines == ["СКИДКА ДНЯ НА", "ВСЁ"]


def test_preview_shows_codes_and_cut() -> None:
    lines = render_text(Receipt().barcode("4600000000008").qr("https://x").cut(feed_lines=0), 32)
    assert "[EAN13 4600000000008]" in lines[0] and "[QR https://x]" in lines[1]
    assert lines[-1] == "=" * 32


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda r: r.barcode("4600000000009"), "not a valid code"),
        (lambda r: r.barcode("460000000000", "EAN13"), "EAN13"),
        (lambda r: r.barcode("ABC", "PDF417"), "symbology 'PDF417' is not supported"),
        (lambda r: r.barcode("Ключ", "CODE128"), "printable ASCII"),
        (lambda r: r.barcode("", "CODE128"), "no data"),
        (lambda r: r.barcode("123", "CODE39", height=0), "height 0"),
        (lambda r: r.qr(""), "no data"),
        (lambda r: r.qr("x" * 8000), "too long"),
        (lambda r: r.qr("x", module_size=20), "module size 20"),
        (lambda r: r.qr("x", error_correction="Z"), "error correction 'Z'"),
        (lambda r: r.feed(300), "feed of 300"),
        (lambda r: r.kick_drawer(3), "pin 3"),
        (lambda r: r.rule("--"), "one character"),
        (lambda r: r.text("x", align="middle"), "middle"),
    ],
)
def test_bad_blocks_are_refused_with_a_reason(build: object, message: str) -> None:
    with pytest.raises((DocumentError, ValueError), match=message):
        build(Receipt())  # type: ignore[operator]


@given(st.text(max_size=300), st.sampled_from([32, 42, 48]), st.booleans())
def test_any_text_renders_and_fits(text: str, columns: int, double: bool) -> None:
    target = RenderTarget.from_config(PrinterConfig(columns=columns))
    receipt = Receipt().text(text, double=double).pair(text[:20], text[-10:])
    data = render_escpos(receipt, target)
    assert data.count(b"\x1b@") == 1
    assert all(len(line) <= columns for line in render_text(receipt, columns))


# --- the printer over in-memory and file transports ------------------------------------------


def enabled(printer: ReceiptPrinter) -> ReceiptPrinter:
    printer.open()
    printer.claim()
    printer.enable()
    return printer


def test_memory_transport_receives_the_rendered_receipt() -> None:
    transport = MemoryTransport()
    printer = enabled(ReceiptPrinter("p", transport, PrinterConfig(paper_width_mm=58)))
    receipt = Receipt().text("Спасибо за покупку!").cut()
    printer.print_receipt(receipt)
    assert transport.output == printer.render(receipt)
    assert printer.preview(receipt)[0] == "Спасибо за покупку!"


def test_file_transport_writes_bytes_and_reports_unknown_status(tmp_path: Path) -> None:
    path = tmp_path / "lp0"
    printer = enabled(ReceiptPrinter("lp", FileTransport(str(path)), status_timeout=0.05))
    printer.print_receipt(Receipt().text("Тест"))
    assert printer.status().answered is False  # a file has no back channel: UNKNOWN, no guess
    printer.close()
    assert "Тест\n".encode("cp866") in path.read_bytes()


def test_printing_needs_claim_and_enable() -> None:
    printer = ReceiptPrinter("p", MemoryTransport())
    printer.open()
    with pytest.raises(NotClaimedError, match="claim"):
        printer.print_receipt(Receipt().text("x"))


def test_unreachable_file_names_the_path(tmp_path: Path) -> None:
    printer = ReceiptPrinter("lp", FileTransport(str(tmp_path / "no" / "such" / "lp0")))
    with pytest.raises(PrinterOffline, match=r"file .*no/such/lp0"):
        printer.open()
