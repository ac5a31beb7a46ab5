"""The register's record of what processing has accepted: goodsId -> content hash.

A chunk's items are written here only after processing answered `Ok` for that chunk,
in one transaction with the chunk's rejections, so an interrupted push leaves an
exact record and the next run sends only what is still missing.  The record belongs
to one processing endpoint and login (`target`): pointed elsewhere, it is reset, as
that processing has seen nothing of ours.  The file is created 0600.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import quote

from bridge.loyalty.protocol import local_now
from bridge.private_files import create_private
from bridge.sqlite_transaction import transaction

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pushed (
    goods_id TEXT PRIMARY KEY, hash BLOB NOT NULL, pushed_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    goods_id TEXT PRIMARY KEY, hash BLOB NOT NULL, error TEXT NOT NULL, at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

# meta keys
TARGET = "target"
LAST_STARTED = "last_push_started"
LAST_COMPLETED = "last_push_completed"
LAST_FULL = "last_full_push"
INCOMPLETE = "push_incomplete"  # set when a push starts, cleared when it finishes everything
FULL_IN_PROGRESS = "full_push_in_progress"  # the replace chunk was accepted; the rest is not yet


class StateError(Exception):
    """The state file cannot be used (unreadable, not ours, newer schema)."""


@dataclass(frozen=True)
class Rejection:
    goods_id: str
    error: str


class CatalogState:
    """One SQLite connection on the state file; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open for a push, creating the file (0600) and its directory if needed."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            create_private(path)
        except OSError as exc:
            raise StateError(f"catalogue state {path}: {exc.strerror}") from None
        conn = cls._connect(str(path), uri=False, path=path)
        state = cls(conn, path, readonly=False)
        state._migrate()
        return state

    @classmethod
    def open_readonly(cls, path: Path) -> Self:
        """For status and dry runs: nothing is written; a missing file reads as empty."""
        if not path.exists():
            conn = cls._connect(":memory:", uri=False, path=path)
            state = cls(conn, None, readonly=True)
            state._migrate()
            return state
        # read-write when allowed, so that a journal left by a killed push is rolled back
        # (a read-only connection cannot); nothing but temporary tables is written
        mode = "rw" if os.access(path, os.W_OK) else "ro"
        conn = cls._connect(f"file:{quote(str(path))}?mode={mode}", uri=True, path=path)
        state = cls(conn, path, readonly=True)
        state._check_schema()
        return state

    @staticmethod
    def _connect(target: str, *, uri: bool, path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, uri=uri, timeout=10, isolation_level=None)
            conn.execute("PRAGMA temp_store = FILE")  # the staging tables stay on disk
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"catalogue state {path} is not usable: {exc}") from None
        return conn

    def _check_schema(self) -> None:
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StateError(f"catalogue state {self.path} is not usable: {exc}") from None
        if version > SCHEMA_VERSION:
            raise StateError(
                f"catalogue state {self.path} was written by a newer posbridge"
                f" (schema {version}, this one knows {SCHEMA_VERSION})"
            )
        if tables and not {"pushed", "meta"} <= tables:
            raise StateError(
                f"catalogue state {self.path} is some other SQLite database; use --state FILE"
            )

    def _migrate(self) -> None:
        self._check_schema()
        try:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StateError(f"catalogue state {self.path} is not usable: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self, *, immediate: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        """See `bridge.sqlite_transaction`; staging on temporary tables passes
        `immediate=False` (a dry run or status must not wait for a push's write lock)."""
        return transaction(self.conn, immediate=immediate)

    # ------------------------------------------------------------------ meta

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.conn.execute(
                "INSERT INTO meta VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def set(self, key: str, value: str | None) -> None:
        with self.transaction():
            self._set(key, value)

    def target_matches(self, target: str) -> bool:
        """True when the record is about this processing (or empty, so about nothing yet)."""
        known = self.get(TARGET)
        return known is None or known == target

    def adopt_target(self, target: str) -> bool:
        """Make the record about `target`; True if an old record for another one was dropped."""
        known = self.get(TARGET)
        if known == target:
            return False
        with self.transaction():
            self.conn.execute("DELETE FROM pushed")
            self.conn.execute("DELETE FROM rejected")
            self.conn.execute("DELETE FROM meta")
            self._set(TARGET, target)
        return known is not None

    # ------------------------------------------------------------------ pushes

    def push_started(self) -> None:
        now = _now()
        with self.transaction():
            self._set(LAST_STARTED, now)
            self._set(INCOMPLETE, now)

    def push_completed(self, full: bool) -> None:
        now = _now()
        with self.transaction():
            self._set(LAST_COMPLETED, now)
            self._set(INCOMPLETE, None)
            self._set(FULL_IN_PROGRESS, None)
            if full:
                self._set(LAST_FULL, now)

    def record_chunk(
        self,
        accepted: Sequence[tuple[str, bytes]],
        rejected: Sequence[tuple[str, bytes, str]],
        *,
        replaced: bool,
    ) -> None:
        """What processing said about one chunk, all or nothing."""
        now = _now()
        with self.transaction():
            if replaced:
                # processing dropped its whole catalogue before taking this chunk
                self.conn.execute("DELETE FROM pushed")
                self.conn.execute("DELETE FROM rejected")
                self._set(FULL_IN_PROGRESS, now)
            self.conn.executemany(
                "INSERT INTO pushed VALUES (?, ?, ?) ON CONFLICT(goods_id) DO UPDATE"
                " SET hash=excluded.hash, pushed_at=excluded.pushed_at",
                ((gid, h, now) for gid, h in accepted),
            )
            self.conn.executemany(
                "DELETE FROM rejected WHERE goods_id=?", ((gid,) for gid, _ in accepted)
            )
            self.conn.executemany(
                "INSERT INTO rejected VALUES (?, ?, ?, ?) ON CONFLICT(goods_id) DO UPDATE"
                " SET hash=excluded.hash, error=excluded.error, at=excluded.at",
                ((gid, h, err, now) for gid, h, err in rejected),
            )

    # ------------------------------------------------------------------ views

    def known_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM pushed").fetchone()[0])

    def rejections(self, limit: int | None = None) -> list[Rejection]:
        sql = "SELECT goods_id, error FROM rejected ORDER BY goods_id"
        rows = self.conn.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [Rejection(r[0], r[1]) for r in rows]

    def rejected_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM rejected").fetchone()[0])


def _now() -> str:
    return local_now().isoformat(timespec="seconds")
