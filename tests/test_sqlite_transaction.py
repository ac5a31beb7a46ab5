"""`bridge.sqlite_transaction.transaction`, the one BEGIN/COMMIT of the journal and the
catalogue state, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.sqlite_transaction import transaction


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=0)


def test_commits_or_rolls_back_whatever_the_interruption(tmp_path: Path) -> None:
    conn = connect(tmp_path / "t.sqlite")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(KeyboardInterrupt), transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise KeyboardInterrupt
    assert not conn.in_transaction  # nothing left open for the next writer
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (3)")
        conn.execute("INSERT INTO t VALUES (NULL)")  # the second statement fails
    assert not conn.in_transaction
    assert connect(tmp_path / "t.sqlite").execute("SELECT x FROM t").fetchall() == [(1,)]


def test_staging_does_not_wait_for_another_writer(tmp_path: Path) -> None:
    """A dry run stages temporary tables while a push holds the file's write lock."""
    path = tmp_path / "state.sqlite"
    pusher, looker = connect(path), connect(path)
    pusher.execute("CREATE TABLE pushed (id TEXT)")
    looker.execute("CREATE TEMP TABLE incoming (id TEXT)")
    pusher.execute("BEGIN IMMEDIATE")
    with transaction(looker, immediate=False):
        looker.execute("INSERT INTO incoming VALUES ('G1')")
    with pytest.raises(sqlite3.OperationalError, match="locked"), transaction(looker):
        pass
    assert not looker.in_transaction
    pusher.execute("ROLLBACK")
