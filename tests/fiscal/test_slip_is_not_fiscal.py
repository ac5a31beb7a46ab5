"""A non-fiscal slip is not a fiscal document: no ESC/POS output is titled "КАССОВЫЙ ЧЕК".

Only the registrar prints a fiscal receipt (54-FZ); a slip from the ESC/POS printer
that looks like one misleads the customer and the tax inspector alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.commands.test_print import test_page as printer_test_page
from bridge.config import parse
from bridge.receipts.render import escpos_bytes, render_target
from bridge.receipts.sample import SCENARIOS, sample_receipt
from bridge.receipts.texts import TEXTS
from drivers.printer.document import render_text

ROOT = Path(__file__).resolve().parents[2]
FISCAL_TITLE = "КАССОВЫЙ ЧЕК"


def _outputs(receipt: object) -> tuple[str, bytes]:
    from drivers.printer.document import Receipt

    assert isinstance(receipt, Receipt)
    return "\n".join(render_text(receipt, 42)), escpos_bytes(receipt, render_target(42))


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("language", ["ru", "en"])
def test_preview_is_not_titled_as_a_fiscal_receipt(scenario: str, language: str) -> None:
    text, escpos = _outputs(sample_receipt(scenario, language))
    assert TEXTS[language].receipt in text  # the slip has a title, just not that one
    assert FISCAL_TITLE not in text.upper()
    assert FISCAL_TITLE.encode("cp866") not in escpos


def test_printer_test_page_is_not_titled_as_a_fiscal_receipt(tmp_path: Path) -> None:
    cfg = parse(
        {
            "processing": {"url": "http://127.0.0.1:9/", "login": "x", "password": "y"},
            "devices": [
                {"name": "p", "kind": "printer", "connection": "file", "port": str(tmp_path / "p")}
            ],
        }
    )
    text, escpos = _outputs(printer_test_page(cfg.devices[0], 42, "CP866", 17))
    assert FISCAL_TITLE not in text.upper() and FISCAL_TITLE.encode("cp866") not in escpos


def test_no_source_of_slips_names_the_fiscal_title() -> None:
    """The ESC/POS side (receipts, printer driver, demo, commands) never spells it."""
    places = ["bridge/receipts", "drivers/printer", "bridge/commands", "bridge/rehearsal"]
    found = [
        str(path.relative_to(ROOT))
        for place in places
        for path in sorted((ROOT / place).rglob("*.py"))
        if FISCAL_TITLE in path.read_text(encoding="utf-8").upper()
    ]
    assert found == []
