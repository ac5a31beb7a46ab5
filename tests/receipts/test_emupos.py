"""The loyalty block as a printer reads it: emupos (an emulator we did not write) decodes our
CP866 ESC/POS bytes, and its text view must equal our text preview, line for line.

One emulated 384-dot head serves 32 columns (font A) and 42 columns (font B), one 576-dot head
serves 48; a line longer than the head would be wrapped by emupos and break the equality.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.receipts.render import printer_config, text_lines
from bridge.receipts.sample import SAMPLE_CARD, SCENARIOS, sample_block
from drivers.printer import NetworkConnection, ReceiptPrinter
from tests.drivers.emupos_helpers import Emupos, running_emupos, write_profile

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
    printer = ReceiptPrinter("front", NetworkConnection("127.0.0.1", emu.tcp_port),
                             printer_config(columns))
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
    ours = text_lines(sample_block(scenario, language).to_receipt(language), columns)
    assert printed == [line.strip() for line in ours if line.strip()]
    assert all(len(line) <= columns for line in printed)
    if language == "ru":
        assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in printed
    assert SAMPLE_CARD not in "".join(printed).replace(" ", "")
    if scenario != "anonymous":
        assert any(line.endswith("277500******6789") for line in printed)

