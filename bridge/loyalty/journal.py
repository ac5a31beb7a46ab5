"""The offline journal: every request that must reach processing, durable before anyone is told.

One SQLite file in WAL mode, mode 0600 (it holds card numbers).  An entry is committed
with a full fsync before the caller gets its answer, so a crash or power cut after
"queued" cannot lose it.  Entries are ordered by an autoincrement sequence, never by
a clock, so a wall-clock jump backwards cannot reorder replay.  Marking an entry done
is committed without a forced fsync: losing that mark to a power cut only means the
entry is sent again, which processing recognises by its operationId.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.loyalty.client import PreparedRequest
from bridge.loyalty.protocol import Operation, dumps, loads, mask_card, path_for

PENDING, DONE, REJECTED = "pending", "done", "rejected"
STATUSES = (PENDING, DONE, REJECTED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    op              TEXT NOT NULL,
    purchase_id     TEXT,
    operation_id    TEXT NOT NULL UNIQUE,
    operation_date  TEXT NOT NULL,
    request         TEXT NOT NULL,
    created_at      REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'done', 'rejected')),
    result          TEXT,
    finished_at     REAL
);
CREATE INDEX IF NOT EXISTS entries_status ON entries (status, seq);
"""


class JournalError(Exception):
    """The journal file cannot be used (path and reason in the message)."""


@dataclass(frozen=True)
class Entry:
    seq: int
    op: str
    purchase_id: str | None
    operation_id: str
    operation_date: str
    request: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None
    status: str
    result: dict[str, Any] | None
    raw_body: bytes | None = field(default=None, compare=False, repr=False)

    def prepared(self) -> PreparedRequest:
        return PreparedRequest.from_record(self.request, self.raw_body)

    @property
    def path(self) -> str:
        return path_for(Operation(self.op), self.purchase_id,
                        self.request.get("targetOperationId"))

    def payload(self) -> bytes:
        """The body exactly as first sent."""
        return self.raw_body if self.raw_body is not None else self.prepared().payload()

    def describe(self) -> str:
        card = self.card()
        who = f" card {mask_card(card)}" if card else ""
        pid = f" purchase {self.purchase_id}" if self.purchase_id else ""
        return f"{self.op}{pid} op {self.operation_id}{who} (journal {self.seq})"

    def card(self) -> str | None:
        ident = self.request.get("body", {}).get("identifier")
        return ident.get("value") if isinstance(ident, dict) else None

    def export(self, unmasked: bool = False) -> dict[str, Any]:
        """A JSON-able view; card numbers masked unless asked otherwise."""
        request = loads(dumps(self.request))
        ident = request.get("body", {}).get("identifier")
        if isinstance(ident, dict) and not unmasked:
            ident["value"] = mask_card(str(ident.get("value", "")))
        return {
            "seq": self.seq,
            "op": self.op,
            "purchaseId": self.purchase_id,
            "operationId": self.operation_id,
            "operationDate": self.operation_date,
            "createdAt": datetime.fromtimestamp(self.created_at).isoformat(timespec="seconds"),
            "attempts": self.attempts,
            "lastError": self.last_error,
            "status": self.status,
            "request": request,
            "result": self.result,
        }

    def __repr__(self) -> str:
        card = self.card()
        who = f", card={mask_card(card)}" if card else ""
        return f"Entry(seq={self.seq}, op={self.op}, status={self.status}{who})"


@dataclass(frozen=True)
class Counts:
    pending: int
    done: int
    rejected: int
    oldest_pending_at: float | None

    def oldest_pending_age(self, now: float | None = None) -> float | None:
        if self.oldest_pending_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest_pending_at)


class Journal:
    """Thread-safe; several processes may open the same file (SQLite locks it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
            old_umask = os.umask(0o077)  # the -wal and -shm files hold the same data
            try:
                self._db = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(_SCHEMA)
            finally:
                os.umask(old_umask)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise JournalError(f"cannot open the offline journal {self.path}: {reason}") from None
        self._db.row_factory = sqlite3.Row

    # ------------------------------------------------------------------ writing

    def append(self, request: PreparedRequest, now: float | None = None) -> Entry:
        """Durably store a request (fsync) and return its entry; a repeat returns the first."""
        text = record_text(request)
        created = time.time() if now is None else now
        date = request.body.operation_date.isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO entries (op, purchase_id, operation_id, operation_date,"
                    " request, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (request.op.value, request.purchase_id, request.operation_id, date, text,
                     created),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if cur.rowcount == 1 and cur.lastrowid is not None:
            return Entry(seq=cur.lastrowid, op=request.op.value, purchase_id=request.purchase_id,
                         operation_id=request.operation_id, operation_date=date,
                         request=loads(text), created_at=created, attempts=0, last_error=None,
                         status=PENDING, result=None)
        entry = self.by_operation_id(request.operation_id)
        assert entry is not None
        return entry

    def finish(
        self, seq: int, status: str, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        if status not in (DONE, REJECTED):
            raise ValueError(f"an entry finishes as done or rejected, not {status!r}")
        self._update(
            "UPDATE entries SET status=?, result=?, last_error=COALESCE(?, last_error),"
            " attempts=attempts+1, finished_at=? WHERE seq=?",
            (
                status,
                None if result is None else dumps(result).decode("utf-8"),
                error,
                time.time(),
                seq,
            ),
        )

    def failed_attempt(self, seq: int, error: str) -> None:
        self._update(
            "UPDATE entries SET attempts=attempts+1, last_error=? WHERE seq=?", (error, seq)
        )

    def retry(self, seq: int) -> Entry:
        """Put a rejected entry back in line (it keeps its place in the order)."""
        entry = self.get(seq)
        if entry is None:
            raise JournalError(f"no journal entry {seq}")
        if entry.status != REJECTED:
            raise JournalError(f"entry {seq} is {entry.status}, only rejected entries are retried")
        self._update("UPDATE entries SET status='pending', finished_at=NULL WHERE seq=?", (seq,))
        again = self.get(seq)
        assert again is not None
        return again

    def prune(self, older_than_seconds: float, now: float | None = None) -> int:
        """Delete done entries finished more than `older_than_seconds` ago."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM entries WHERE status='done' AND finished_at < ?", (cutoff,)
            )
            return cur.rowcount

    def _update(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(sql, args)

    # ------------------------------------------------------------------ reading

    def next_pending(self, after: int = 0) -> Entry | None:
        return self._one(
            "SELECT * FROM entries WHERE status='pending' AND seq>? ORDER BY seq LIMIT 1", (after,)
        )

    def pending_page(self, after: int = 0, limit: int = 50) -> list[Entry]:
        """The next pending entries in order, a page at a time (one query, not one each)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM entries WHERE status='pending' AND seq>? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def first_pending_seq(self) -> int | None:
        entry = self.next_pending()
        return None if entry is None else entry.seq

    def get(self, seq: int) -> Entry | None:
        return self._one("SELECT * FROM entries WHERE seq=?", (seq,))

    def by_operation_id(self, operation_id: str) -> Entry | None:
        return self._one("SELECT * FROM entries WHERE operation_id=?", (operation_id,))

    def entries(self, status: str | None = None) -> Iterator[Entry]:
        if status is not None and status not in STATUSES:
            raise JournalError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        with self._lock:
            if status is None:
                rows = self._db.execute("SELECT * FROM entries ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM entries WHERE status=? ORDER BY seq", (status,)
                ).fetchall()
        for row in rows:
            yield _entry(row)

    def counts(self) -> Counts:
        with self._lock:
            rows = dict(
                self._db.execute("SELECT status, COUNT(*) FROM entries GROUP BY status").fetchall()
            )
            oldest = self._db.execute(
                "SELECT MIN(created_at) FROM entries WHERE status='pending'"
            ).fetchone()[0]
        return Counts(rows.get(PENDING, 0), rows.get(DONE, 0), rows.get(REJECTED, 0), oldest)

    def _one(self, sql: str, args: tuple[Any, ...]) -> Entry | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else _entry(row)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"


_BODY_KEY = ',"body":'


def record_text(request: PreparedRequest) -> str:
    """How an entry stores its request: JSON with the body last, encoded once, as sent."""
    return (
        '{"op":' + dumps(request.op.value).decode()
        + ',"purchaseId":' + dumps(request.purchase_id).decode()
        + ',"targetOperationId":' + dumps(request.target_operation_id).decode()
        + _BODY_KEY + request.payload().decode("utf-8") + "}"
    )


def _raw_body(text: str) -> bytes | None:
    """The stored body exactly as it was first sent (the record's last field)."""
    at = text.find(_BODY_KEY)
    return text[at + len(_BODY_KEY) : -1].encode("utf-8") if at >= 0 and text[-1] == "}" else None


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        seq=row["seq"],
        op=row["op"],
        purchase_id=row["purchase_id"],
        operation_id=row["operation_id"],
        operation_date=row["operation_date"],
        request=loads(row["request"]),
        created_at=row["created_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        status=row["status"],
        result=None if row["result"] is None else loads(row["result"]),
        raw_body=_raw_body(row["request"]),
    )
