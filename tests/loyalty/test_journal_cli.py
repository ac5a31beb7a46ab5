"""`posbridge journal ...`: what a technician sees and can do with the offline journal."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import load
from bridge.loyalty.journal import EntryStatus, Journal
from bridge.loyalty.protocol import Identifier
from bridge.loyalty.purchase import Purchase
from bridge.runtime import offline_client
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD, admin
from tests.loyalty.offline_helpers import shift

CARD = "2775000000012"


@pytest.fixture
def cfg(sandbox_server: SandboxServer, tmp_path: Path) -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "lock"}"\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
    )
    return path


def queue_offline(cfg: Path, server: SandboxServer, n: int) -> None:
    server.stop()
    oc = offline_client(load(cfg))
    for cheque, _, _, _ in shift(11, n):
        p = Purchase(oc, cheque, Identifier(value=CARD))
        p.discount()
        p.confirm()
    oc.client.close()
    oc.journal.close()
    server.start()


def test_status_list_replay(
    cfg: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_offline(cfg, sandbox_server, 3)
    assert main(["--config", str(cfg), "journal", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == 6 and status["processing"] == "online"
    assert main(["--config", str(cfg), "journal", "list", "--status", "pending"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("pending") == 6 and CARD not in listing and "27*******0012" in listing
    assert main(["--config", str(cfg), "journal", "replay"]) == 0
    out = capsys.readouterr()
    assert "6 done, 0 rejected" in out.out and "journal replay" in out.err
    assert admin(sandbox_server, "status")["duplicates"] == 0
    assert main(["--config", str(cfg), "journal", "replay"]) == 0
    assert "nothing to replay" in capsys.readouterr().out


def test_export_masks_unless_asked(
    cfg: Path, sandbox_server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_offline(cfg, sandbox_server, 1)
    out = tmp_path / "export.jsonl"
    assert main(["--config", str(cfg), "journal", "export", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and CARD not in out.read_text()
    assert main(["--config", str(cfg), "journal", "export", str(out), "--unmasked"]) == 0
    assert CARD in out.read_text()


def test_replay_while_offline_exits_3(
    cfg: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_offline(cfg, sandbox_server, 1)
    sandbox_server.stop()
    assert main(["--config", str(cfg), "journal", "replay"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_retry_a_rejected_entry(
    cfg: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_server.stop()
    oc = offline_client(load(cfg))
    ((cheque, _, _, _),) = shift(12, 1)
    Purchase(oc, cheque, Identifier(value=CARD)).confirm()  # processing never saw it: refused
    sandbox_server.start()
    oc.drain()
    (entry,) = oc.journal.entries(EntryStatus.REJECTED)
    assert main(["--config", str(cfg), "journal", "replay"]) == 0
    assert main(["--config", str(cfg), "journal", "retry", str(entry.seq)]) == 0
    assert "pending again" in capsys.readouterr().out
    assert main(["--config", str(cfg), "journal", "retry", "999"]) != 0
    oc.client.close()
    oc.journal.close()


def test_statuses_are_the_strings_old_journals_hold(tmp_path: Path) -> None:
    """EntryStatus serialises as the same three words: a file written before the enum (or
    by hand) opens, filters and compares as it is, and `--status` offers the same words."""
    from bridge.commands.journal import STATUSES

    assert STATUSES == tuple(EntryStatus)
    path = tmp_path / "old.sqlite"
    Journal(path).close()  # the schema, with its CHECK on the words
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO entries (op, operation_id, operation_date, request, created_at, status)"
        " VALUES ('confirm', 'op-1', '2026-01-01T10:00:00', ?, 0, 'rejected')",
        ('{"op":"confirm","purchaseId":"p1","targetOperationId":null,"body":{}}',),
    )
    raw.commit()
    raw.close()
    journal = Journal(path)
    (entry,) = journal.entries("rejected")
    assert entry.status is EntryStatus.REJECTED and journal.counts().rejected == 1
    journal.finish(entry.seq, EntryStatus.DONE, {"code": "Ok"})
    journal.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT status FROM entries").fetchall() == [("done",)]
    raw.close()
