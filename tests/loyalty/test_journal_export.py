"""`posbridge journal export`: stdout for `-`, never through a symlink, atomic, 0600."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Entry, Journal, JournalUnavailable
from bridge.loyalty.protocol import Identifier, Operation

CARD = "2775000000012"


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[str]:
    journal = tmp_path / "journal.sqlite"
    client = LoyaltyClient(
        "http://127.0.0.1:9/publicapi",
        "register-1",
        "secret-1",
        lock_file=tmp_path / "processing.lock",
    )
    j = Journal(journal)
    for i in range(3):
        j.append(
            client.prepare(
                Operation.CONFIRM, purchase_id=f"p{i}", identifier=Identifier(value=CARD)
            )
        )
    j.close()
    client.close()
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "http://127.0.0.1:9/publicapi"\nlogin = "register-1"\n'
        f'password = "secret-1"\nlock_file = "{tmp_path / "processing.lock"}"\n'
        f'[journal]\npath = "{journal}"\n'
    )
    yield str(path)


def export(cfg: str, *args: str) -> int:
    return main(["--config", cfg, "journal", "export", *args])


def test_dash_is_stdout(
    cfg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert export(cfg, "-") == 0
    out = capsys.readouterr()
    lines = [json.loads(x) for x in out.out.splitlines()]
    assert [x["purchaseId"] for x in lines] == ["p0", "p1", "p2"]
    assert CARD not in out.out  # masked, as for a file
    assert "3 entries written to stdout" in out.err  # the summary stays out of the data
    assert not (tmp_path / "-").exists()


def test_a_symlink_is_refused_and_its_target_untouched(
    cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    link = tmp_path / "export.jsonl"
    link.symlink_to(victim)
    assert export(cfg, str(link)) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == "keep me\n" and link.is_symlink()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644

    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "file")
    assert export(cfg, str(dangling)) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_written_atomically_with_mode_0600(
    cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    target.write_text("old export\n")
    target.chmod(0o644)
    old_inode = target.stat().st_ino
    assert export(cfg, str(target)) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != old_inode  # a new file renamed into place
    assert len(target.read_text().splitlines()) == 3
    assert sorted(os.listdir(target.parent)) == ["export.jsonl"]  # no temp file left
    capsys.readouterr()


def test_a_failed_export_leaves_the_old_file_whole(
    cfg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    target.write_text("old export\n")
    real = Journal.entries

    def failing(self: Journal, status: str | None = None) -> Iterator[Entry]:
        it = real(self, status)
        yield next(it)
        raise JournalUnavailable(self.path, "I/O error (disk I/O error)")

    monkeypatch.setattr(Journal, "entries", failing)
    assert export(cfg, str(target)) == 2
    assert "I/O error" in capsys.readouterr().err
    assert target.read_text() == "old export\n"
    assert sorted(os.listdir(target.parent)) == ["export.jsonl"]


def test_not_a_regular_file_or_a_missing_directory(
    cfg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert export(cfg, str(fifo)) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert export(cfg, str(tmp_path / "missing" / "x.jsonl")) == 2
    assert "cannot write in" in capsys.readouterr().err
