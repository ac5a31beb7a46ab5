"""The demo's fiscal step: the emulator started, one sale printed with the loyalty lines
inside, the paper log checked; run within the whole demo, as a user runs it."""

from __future__ import annotations

from pathlib import Path

from bridge.rehearsal.demo import run


def test_the_demo_prints_a_fiscal_receipt_with_the_loyalty_block(tmp_path: Path) -> None:
    said: list[str] = []
    assert run(tmp_path, "ru", said.append) == 0, "\n".join(said)
    step = [line for line in said if "fiscal" in line or "Shtrih-M emulator" in line]
    assert any("Shtrih-M emulator" in line for line in step), said
    assert any("[ok] fiscal receipt closed: FD" in line for line in step), said
    assert any("[ok] a retried print answers the same document" in line for line in said)
    paper = (tmp_path / "fiscal-receipt.txt").read_text(encoding="utf-8")
    # the registrar's receipt: fiscal, with the loyalty block between the items and the total
    assert paper.index("КАССОВЫЙ ЧЕК") < paper.index("ПРОГРАММА ЛОЯЛЬНОСТИ") < paper.index("ИТОГ")
    assert "27*******0050" in paper and "2775000000050" not in paper
