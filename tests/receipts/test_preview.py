"""`posbridge receipt preview`: text, PNG and ESC/POS files a technician can check without a printer.

Runs through the real `posbridge` entry point with the subcommand registered as the lead
will register it in bridge/cli.py.  The PNG is opened with Pillow; the ESC/POS file is decoded
with Python's cp866 codec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFont

from bridge import cli, config
from bridge.receipts import png
from bridge.receipts.render import rows
from bridge.receipts.sample import SAMPLE_CARD, SAMPLE_QR, SCENARIOS, sample_receipt
from drivers.printer.document import Barcode, QRCode, Receipt, render_text
from tests.drivers.emupos_helpers import zbar_decode

CARD = "4600123456789012"
MASKED = "4600********9012"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(
        cli.COMMANDS, "receipt", ("bridge.commands.receipt", "preview a receipt without a printer")
    )
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "no-config.toml")


def preview(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["receipt", "preview", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def ink_box(path: Path) -> tuple[int, int, int, int]:
    with Image.open(path) as image:
        gray = image.convert("L")
        box = ImageChops.invert(gray).getbbox()
    assert box is not None, "the PNG is blank"
    return box


@pytest.mark.parametrize("columns", [32, 42, 48])
@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_preview_writes_text_png_and_escpos(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    scenario: str,
    language: str,
    columns: int,
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = preview(
        capsys,
        "--language",
        language,
        "--columns",
        str(columns),
        "--scenario",
        scenario,
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert stderr == ""  # a Cyrillic font was found, every character fits CP866
    text = (out / "receipt.txt").read_text(encoding="utf-8")
    expected = render_text(sample_receipt(scenario, language), columns)
    assert text.splitlines() == expected
    assert all(len(line) <= columns for line in expected)
    assert SAMPLE_CARD not in re.sub(r"\D", "", text)

    with Image.open(out / "receipt.png") as image:
        assert image.format == "PNG"
        width, height = image.size
    fonts = png.load_fonts()
    cell = int(-(-fonts.regular.getlength("M") // 1))
    assert width == (columns + 2) * cell  # the paper's columns plus a one-cell margin each side
    assert height > len(expected) * png.FONT_SIZE
    left, top, right, bottom = ink_box(out / "receipt.png")
    assert cell - 1 <= left and right <= width - cell + 1  # nothing drawn past the paper
    assert top >= cell - 1 and bottom <= height - cell + 1
    assert right >= width - 2 * cell  # the full-width rules reach the right edge
    assert f"{width}x{height} px" in stdout

    data = (out / "receipt.bin").read_bytes()
    assert data.startswith(b"\x1b@\x1bt\x11")
    decoded = data.decode("cp866")
    title = "ПРОГРАММА ЛОЯЛЬНОСТИ" if language == "ru" else "LOYALTY PROGRAM"
    assert title in decoded
    assert SAMPLE_CARD.encode() not in data


def _glyphs_differ_from_missing_ones(tmp_path: Path) -> bool:
    """Cyrillic drawn in the PNG versus characters no font has (drawn as the missing box)."""
    cyrillic = png.write_png(Receipt().text("ЖЩЯ"), 32, tmp_path / "cyr.png")
    missing = png.write_png(Receipt().text("\U0010fffd" * 3), 32, tmp_path / "none.png")
    with Image.open(cyrillic.path) as a, Image.open(missing.path) as b:
        return ImageChops.difference(a, b).getbbox() is not None


def test_png_draws_real_cyrillic_glyphs(tmp_path: Path) -> None:
    fonts = png.load_fonts()
    if fonts.warning:
        pytest.skip(f"no Cyrillic monospace font on this machine: {fonts.warning}")
    assert png.has_cyrillic(fonts.regular)
    assert _glyphs_differ_from_missing_ones(tmp_path)


def test_the_cyrillic_check_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not png.has_cyrillic(ImageFont.load_default(png.FONT_SIZE))
    monkeypatch.setattr(png, "CANDIDATES", [])
    monkeypatch.setattr(png, "_fontconfig_candidates", list)
    assert png.load_fonts().warning == png.NO_FONT_WARNING
    assert not _glyphs_differ_from_missing_ones(tmp_path)


def test_without_a_cyrillic_font_the_png_is_still_written_with_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine without fonts-dejavu-core cannot be made on demand; hide the fonts instead.
    monkeypatch.setattr(png, "CANDIDATES", [])
    monkeypatch.setattr(png, "_fontconfig_candidates", list)
    code, stdout, stderr = preview(capsys, "--out", str(tmp_path))
    assert code == 0
    assert "fonts-dejavu-core" in stderr and "Cyrillic" in stderr
    assert "font Pillow default" in stdout
    with Image.open(tmp_path / "receipt.png") as image:
        assert image.width > 0


def test_a_file_that_is_not_a_font(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "font.ttf"
    bad.write_text("not a font")
    code, _, stderr = preview(capsys, "--out", str(tmp_path), "--font", str(bad))
    assert code == 2
    assert f"font {bad} cannot be read" in stderr and "receipt.txt and receipt.bin" in stderr
    assert (tmp_path / "receipt.txt").exists() and not (tmp_path / "receipt.png").exists()


DESCRIPTION = {
    "header": ["Shop for card 4600123456789012"],
    "cheque": {
        "number": "77",
        "date": "2026-11-29T15:00:00",
        "lines": [
            {
                "position": 1,
                "goodsId": "1001",
                "name": "Молоко",
                "price": "89.90",
                "quantity": "2",
                "amount": "179.80",
            },
        ],
    },
    "discount": "9.80",
    "loyalty": {
        "state": "normal",
        "card": "4600 1234 5678 9012",
        "balanceBefore": "10",
        "balanceAfter": "27.00",
        "accrued": "17",
        "redeemed": "0",
        "chequeMessage": "Бонусы за карту " + CARD + " " + "очень-длинное-слово" * 5,
    },
    "qr": "https://example.com/?card=" + CARD,
}


def test_from_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "receipt.json"
    source.write_text(json.dumps(DESCRIPTION, ensure_ascii=False), encoding="utf-8")
    code, _, stderr = preview(
        capsys, "--from-json", str(source), "--columns", "32", "--out", str(tmp_path / "o")
    )
    assert code == 0, stderr
    lines = (tmp_path / "o" / "receipt.txt").read_text(encoding="utf-8").splitlines()
    assert all(len(line) <= 32 for line in lines)
    assert "Молоко" in lines[3] or "1. Молоко" in lines
    assert any(line.startswith("Баланс после") and line.endswith("27,00") for line in lines)
    assert any(line.startswith("К оплате") and line.endswith("170,00") for line in lines)
    everything = "\n".join(lines) + (tmp_path / "o" / "receipt.bin").read_bytes().decode("cp866")
    assert CARD not in re.sub(r"\D", "", everything)
    assert everything.count(MASKED) >= 4  # header, card line, message, QR


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"{not json", "is not valid UTF-8 JSON"),
        (b"\xff\xfe", "is not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"loyality": {}}', "loyality: Extra inputs are not permitted"),
        (
            b'{"loyalty": {"card": "4600123456789012", "balanceBefore": "abc"}}',
            "loyalty.balanceBefore: 'abc' is not a decimal number",
        ),
        (
            b'{"loyalty": {"card": "4600123456789012", "accrued": "-1"}}',
            "loyalty.accrued: Input should be greater than or equal to 0",
        ),
        (b'{"loyalty": {"state": "vip"}}', "loyalty.state: Input should be"),
        (b'{"loyalty": {"state": "blocked"}}', "a blocked loyalty block needs a card number"),
        (
            b'{"cheque": {"number": "1", "date": "2026-11-29T15:00:00+03:00", "lines": []}}',
            "cheque.date: ",
        ),
    ],
)
def test_bad_json_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, named: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_bytes(content)
    code, _, stderr = preview(capsys, "--from-json", str(source), "--out", str(tmp_path / "o"))
    assert code == 2
    assert named in stderr
    assert str(source) in stderr
    assert CARD not in stderr
    assert not (tmp_path / "o").exists()


def test_missing_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, stderr = preview(capsys, "--from-json", str(tmp_path / "none.json"))
    assert code == 2 and "cannot read receipt file" in stderr and "No such file" in stderr


def test_language_width_and_printer_come_from_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        '[processing]\nurl = "https://processing.example/publicapi"\nlogin = "r"\n'
        'password = "p"\n[receipt]\nlanguage = "en"\ncolumns = 32\nprinter = "front"\n'
        '[[devices]]\nname = "front"\nkind = "printer"\nconnection = "tcp"\n'
        'host = "127.0.0.1"\npaper_mm = 58\ncodepage_slot = 59\n'
    )
    code = cli.main(["--config", str(cfg), "receipt", "preview", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 0
    lines = (tmp_path / "receipt.txt").read_text(encoding="utf-8").splitlines()
    assert "LOYALTY PROGRAM" in lines[lines.index("=" * 32) + 1]
    assert (tmp_path / "receipt.bin").read_bytes().startswith(b"\x1b@\x1bt;")  # slot 59
    assert "ESC t slot 59" in stdout
    # options win over the config
    code = cli.main(
        [
            "--config",
            str(cfg),
            "receipt",
            "preview",
            "--language",
            "ru",
            "--columns",
            "48",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    lines = (tmp_path / "receipt.txt").read_text(encoding="utf-8").splitlines()
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in lines[lines.index("=" * 48) + 1]


def test_a_broken_config_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text("[receipt]\ncolumns = 40\n")
    code = cli.main(["--config", str(cfg), "receipt", "preview", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "receipt.columns" in err and "processing: missing" in err


def test_out_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = preview(capsys, "--out", str(blocker))
    assert code == 2 and f"cannot write the preview to {blocker}" in stderr


def test_unprintable_characters_are_warned_about(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"header": ["Цена 5 € ☕"]}), encoding="utf-8")
    code, _, stderr = preview(capsys, "--from-json", str(source), "--out", str(tmp_path))
    assert code == 0
    assert "CP866 has no € ☕" in stderr


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--columns", "40"], "--columns: invalid choice: 40"),
        (["--language", "de"], "--language: invalid choice: 'de'"),
        (["--scenario", "vip"], "--scenario: invalid choice: 'vip'"),
        (["--scenario", "normal", "--from-json", "x.json"], "not allowed with argument"),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["receipt", "preview", *argv])
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


# --- codes in the PNG are real: zbarimg (not ours) reads them ----------------------------------


@pytest.mark.parametrize("columns", [32, 48])
def test_sample_qr_in_the_png_scans(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, columns: int
) -> None:
    code, _, stderr = preview(capsys, "--columns", str(columns), "--out", str(tmp_path))
    assert code == 0, stderr
    assert zbar_decode(tmp_path / "receipt.png") == [f"QR-Code:{SAMPLE_QR}"]


def test_json_barcodes_scan_and_bad_ones_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "r.json"
    source.write_text(
        json.dumps(
            {
                "barcodes": [{"data": "4600000000008"}, {"data": "CHQ-77", "symbology": "CODE128"}],
                "qr": "Привет, мир",
            }
        ),
        encoding="utf-8",
    )
    code, _, stderr = preview(capsys, "--from-json", str(source), "--out", str(tmp_path))
    assert code == 0, stderr
    found = zbar_decode(tmp_path / "receipt.png")
    assert sorted(found) == ["CODE-128:CHQ-77", "EAN-13:4600000000008", "QR-Code:Привет, мир"]
    text = (tmp_path / "receipt.txt").read_text(encoding="utf-8")
    assert "[EAN13 4600000000008]" in text and "[CODE128 CHQ-77]" in text

    source.write_text(json.dumps({"barcodes": [{"data": "4600000000009"}]}))
    code, _, stderr = preview(capsys, "--from-json", str(source), "--out", str(tmp_path))
    assert code == 2
    assert f"receipt file {source}: EAN13 barcode '4600000000009' is not a valid code" in stderr


def test_a_code_wider_than_the_paper_is_a_placeholder(tmp_path: Path) -> None:
    big = QRCode("x" * 2000, module_size=16)
    shrunk = png.code_image(big, 13, 32 * 13)  # smaller modules until it fits
    assert shrunk is not None and shrunk.width <= 32 * 13
    assert png.code_image(big, 13, 100) is None  # not even at one pixel a module
    long_code = Barcode("A" * 60, "CODE128")
    assert png.code_image(long_code, 13, 32 * 13) is None
    info = png.write_png(Receipt().add(long_code), 32, tmp_path / "p.png")
    with Image.open(info.path) as image:
        assert image.width == 34 * info.cell_width
        assert image.height < 6 * info.line_height  # a text placeholder, not a picture
    assert zbar_decode(info.path) == []


@pytest.mark.parametrize("columns", [32, 42, 48])
def test_one_preview_for_the_printer_the_png_and_the_files(columns: int) -> None:
    """ReceiptPrinter.preview, the PNG's rows and receipt.txt show the same lines: codes too
    (a fiscal QR wider than the paper is wrapped, aligned as the code is printed)."""
    url = "https://check.example/?fn=9999078900012345&i=12345&fp=1234567890&n=1&s=384.30"
    receipt = sample_receipt("normal", "ru").barcode("4600000000008", symbology="ean13").qr(url)
    lines = render_text(receipt, columns)
    assert [row.text for row in rows(receipt, columns)] == lines
    assert all(len(line) <= columns for line in lines)
    assert [line.strip() for line in lines].count("[EAN13 4600000000008]") == 1
    assert f"[QR {url}]" in "".join(line.strip() for line in lines)  # wrapped, all of it
