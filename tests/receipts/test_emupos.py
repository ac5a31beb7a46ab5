"""The loyalty block as a printer reads it: emupos (an emulator we did not write) decodes our
CP866 ESC/POS bytes, and its text view must equal our text preview, line for line.

One emulated 384-dot head serves 32 columns (font A) and 42 columns (font B), one 576-dot head
serves 48; a line longer than the head would be wrapped by emupos and break the equality.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import cli, config
from bridge.receipts.render import printer_config, rows
from bridge.receipts.sample import SAMPLE_CARD, SAMPLE_QR, SCENARIOS, sample_block, sample_receipt
from drivers.printer import ReceiptPrinter
from drivers.printer.document import render_text
from drivers.transport.tcp import TcpTransport
from tests.drivers.emupos_helpers import (
    Emupos,
    require_zbarimg,
    running_emupos,
    write_profile,
    zbar_decode,
)

HEADS = {32: 384, 42: 384, 48: 576}


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Emupos]]:
    started: dict[int, Iterator[Emupos]] = {}
    emus: dict[int, Emupos] = {}
    try:
        for dots in sorted(set(HEADS.values())):
            tmp = tmp_path_factory.mktemp(f"emupos{dots}")
            profile = write_profile(
                tmp / "head.yaml", width_dots=dots, code_pages={0: "PC437", 17: "PC866"}
            )
            started[dots] = running_emupos(tmp / "emu", profile=str(profile), serial=False)
            emus[dots] = next(started[dots])
        yield {columns: emus[dots] for columns, dots in HEADS.items()}
    finally:
        for gen in started.values():
            gen.close()  # runs running_emupos's finally: stops the emulator


def print_on(emu: Emupos, columns: int, language: str, scenario: str) -> list[str]:
    receipt = sample_block(scenario, language).to_receipt(language)
    printer = ReceiptPrinter(
        "front", TcpTransport("127.0.0.1", emu.tcp_port), printer_config(columns)
    )
    printer.open()
    printer.claim()
    printer.enable()
    done, unknown = len(emu.receipts_completed()), len(emu.unknown_commands())
    try:
        printer.print_receipt(receipt.cut())
    finally:
        printer.close()
    emu.wait_event("printer.job.completed", done + 1)
    assert emu.unknown_commands()[unknown:] == []
    text = emu.receipt_text(emu.receipts_completed()[done])
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("columns", sorted(HEADS))
@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_emupos_reads_what_we_preview(
    heads: dict[int, Emupos], scenario: str, language: str, columns: int
) -> None:
    printed = print_on(heads[columns], columns, language, scenario)
    ours = render_text(sample_block(scenario, language).to_receipt(language), columns)
    assert printed == [line.strip() for line in ours if line.strip()]
    assert all(len(line) <= columns for line in printed)
    if language == "ru":
        assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in printed
    assert SAMPLE_CARD not in "".join(printed).replace(" ", "")
    if scenario != "anonymous":
        assert any(line.endswith("2775********6789") for line in printed)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_preview_bin_file_prints_as_previewed(
    heads: dict[int, Emupos],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    language: str,
) -> None:
    """receipt.bin sent as is (as `cat receipt.bin > printer` would): emupos prints receipt.txt."""
    monkeypatch.setitem(cli.COMMANDS, "receipt", ("bridge.commands.receipt", "receipt preview"))
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "no-config.toml")
    assert (
        cli.main(
            [
                "receipt",
                "preview",
                "--columns",
                "48",
                "--language",
                language,
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    capsys.readouterr()
    emu = heads[48]
    done, unknown = len(emu.receipts_completed()), len(emu.unknown_commands())
    with socket.create_connection(("127.0.0.1", emu.tcp_port), timeout=10) as sock:
        sock.sendall((tmp_path / "receipt.bin").read_bytes())
    emu.wait_event("printer.job.completed", done + 1)
    assert emu.unknown_commands()[unknown:] == []
    receipt_id = emu.receipts_completed()[done]
    printed = [line.strip() for line in emu.receipt_text(receipt_id).splitlines()]
    printed = [line for line in printed if line and not line.startswith("[qr ")]
    text = (tmp_path / "receipt.txt").read_text(encoding="utf-8").splitlines()
    previewed = rows(sample_receipt("normal", language), 48)
    assert text == [r.text for r in previewed]
    expected = [r.text.strip() for r in previewed if r.text.strip() and not r.code][:-1]  # cut
    assert printed == expected
    require_zbarimg()
    assert zbar_decode(emu.receipt_png(receipt_id, tmp_path / "emupos.png")) == [
        f"QR-Code:{SAMPLE_QR}"
    ]
