"""The demo is the product's main job on the embedded default: it must pass, fast."""

from __future__ import annotations

from pathlib import Path

from bridge.rehearsal.demo import run


def test_demo_passes_and_leaves_receipts(tmp_path: Path) -> None:
    said: list[str] = []
    assert run(tmp_path, "ru", said.append) == 0, "\n".join(said)
    assert not [line for line in said if "[FAIL]" in line]
    for n in (1, 2):
        text = (tmp_path / f"receipt-{n}.txt").read_text(encoding="utf-8")
        assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in text and "2775000000" not in text
        assert (tmp_path / f"receipt-{n}.png").stat().st_size > 1000
        assert b"\x1b@\x1bt" in (tmp_path / f"receipt-{n}.escpos").read_bytes()  # code page pinned
    assert "восстановления связи" in " ".join((tmp_path / "receipt-2.txt").read_text().split())


def test_demo_in_english(tmp_path: Path) -> None:
    said: list[str] = []
    assert run(tmp_path, "en", said.append) == 0, "\n".join(said)
    assert "LOYALTY PROGRAM" in (tmp_path / "receipt-1.txt").read_text()
