"""`posbridge demo --passthrough`: an unmodified POS's shift, checked step by step."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import main
from bridge.rehearsal import passthrough_demo


def test_the_passthrough_demo_passes_and_leaves_the_paper(tmp_path: Path) -> None:
    said: list[str] = []
    assert passthrough_demo.run(tmp_path, "ru", said.append) == 0, "\n".join(said)
    assert not [line for line in said if "[FAIL]" in line]
    assert len([line for line in said if "[ok]" in line]) >= 15
    paper = (tmp_path / "passthrough-paper.txt").read_text(encoding="utf-8")
    assert paper.count("ПРОГРАММА ЛОЯЛЬНОСТИ") == 2  # receipts 1 and 3; not receipt 2
    assert "восстановления связи" in paper and "2775000000050" not in paper


def test_a_relay_missing_from_the_build_is_a_step_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passthrough_demo, "RELAYS", ("bridge.passthrough.no_such_relay",))
    said: list[str] = []
    assert passthrough_demo.run(tmp_path, "en", said.append) == 1
    assert any("[FAIL]" in line and "was not run" in line for line in said), said


def test_the_cli_flag_plays_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--passthrough", "--language", "en", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo passed" in out
    assert "LOYALTY PROGRAM" in (tmp_path / "passthrough-paper.txt").read_text(encoding="utf-8")
