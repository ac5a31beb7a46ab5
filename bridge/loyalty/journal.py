"""The offline journal: every request that must reach processing, durable before anyone is told.

One SQLite file in WAL mode, mode 0600 (it holds card numbers).  An entry is committed
with a full fsync before the caller gets its answer, so a crash or power cut after
"queued" cannot lose it.  Entries are ordered by an autoincrement sequence, never by
a clock, so a wall-clock jump backwards cannot reorder replay.  Marking an entry done
is committed without a forced fsync: losing that mark to a power cut only means the
entry is sent again, which processing recognises by its operationId.

A journal that cannot be written (disk full, read-only, I/O error) raises
`JournalUnavailable` naming the file and the reason, never a secondary SQLite error,
and marks itself degraded until a write succeeds again: nothing is restarted, the next
append that finds space clears it.  What the register does with a step it cannot
journal is the offline client's rule (see `bridge.loyalty.offline` and docs/journal.md):
a must-reach step is never sent unjournaled, and a purchase it would leave half-done is
cancelled at processing.

A damaged file (the start-up `PRAGMA quick_check` fails, or it is not a database at
all) is moved aside, never deleted, as `journal.sqlite.damaged-YYYYmmddTHHMMSS` with
its -wal and -shm, and a fresh journal is started so the register keeps selling.  A
0600 marker beside the journal keeps the alarm until a technician acknowledges it;
`salvage` brings every readable pending entry back, with its original number, which
the fresh journal's numbering starts above, so replay order is kept.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.loyalty.protocol import Operation, dumps, loads, mask_card, path_for
from bridge.loyalty.request import PreparedRequest
from bridge.private_files import create_private, private_umask
from bridge.sqlite_transaction import transaction
from drivers.masking import mask_data, mask_text

log = logging.getLogger("posbridge.journal")


class EntryStatus(enum.StrEnum):
    """Where an entry stands.  Stored as these very strings (the table's CHECK names
    them), so journals written before the enum open and compare as they are."""

    PENDING = "pending"  # waiting to be sent, in order
    DONE = "done"  # processing took it (or it had already taken effect)
    REJECTED = "rejected"  # processing refused it; kept until a technician retries it


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
# A write needing a fresh page, to learn whether the disk takes writes again.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"

# SQLite primary result codes
_BUSY, _READONLY, _IOERR, _CORRUPT, _CANTOPEN, _FULL, _NOTADB = 5, 8, 10, 11, 14, 13, 26
_DAMAGE = frozenset({_CORRUPT, _NOTADB})
MIN_FREE_BYTES = 64 * 1024  # less than this free under the journal counts as full
FRESH_START_UNKNOWN = 1_000_000_000  # fresh numbering when the damaged file's is unreadable
SALVAGE_MAX_SEQ = 5_000_000  # rows probed one by one at most
CASHIER_UNAVAILABLE = "Loyalty journal unavailable: finish the sale without loyalty or call support"


class JournalError(Exception):
    """The journal file cannot be used (path and reason in the message)."""


class JournalUnavailable(JournalError):
    """A journal write (or read) failed: disk full, read-only, I/O error or damage.

    `undone` says what the register undid at processing because of it, if anything.
    """

    def __init__(self, path: Path, reason: str, undone: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.undone = undone
        text = f"offline journal {path} unavailable: {reason}"
        super().__init__(text + (f"; {undone}" if undone else ""))

    @property
    def cashier_text(self) -> str:
        return CASHIER_UNAVAILABLE

    def with_undone(self, undone: str | None) -> JournalUnavailable:
        return JournalUnavailable(self.path, self.reason, undone)


class JournalDamaged(JournalError):
    """The file fails its integrity check (and was not to be repaired)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"offline journal {path} is damaged ({problem}); restart the service to move it"
            " aside and start a fresh one, then `posbridge journal salvage` the moved file"
        )


def describe_error(exc: sqlite3.Error) -> str:
    """A reason a technician acts on: disk full, read-only, I/O error, damaged."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    name = {
        _FULL: "disk full",
        _READONLY: "read-only",
        _IOERR: "I/O error",
        _CORRUPT: "damaged",
        _NOTADB: "damaged",
        _CANTOPEN: "cannot open",
        _BUSY: "locked by another process",
    }.get(code)
    return f"{name} ({exc})" if name else str(exc)


def storage_failure(exc: sqlite3.Error) -> str | None:
    """The reason when an SQLite error is the disk's (full, read-only, I/O), else None."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return describe_error(exc) if code in (_FULL, _READONLY, _IOERR, _CANTOPEN) else None


def _is_damage(exc: BaseException) -> bool:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    return isinstance(exc, sqlite3.DatabaseError) and code in _DAMAGE


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
    status: EntryStatus
    result: dict[str, Any] | None
    raw_body: bytes | None = field(default=None, compare=False, repr=False)
    raw_text: str | None = field(default=None, compare=False, repr=False)

    def prepared(self) -> PreparedRequest:
        return PreparedRequest.from_record(self.request, self.raw_body)

    @property
    def path(self) -> str:
        return path_for(Operation(self.op), self.purchase_id, self.request.get("targetOperationId"))

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
        """A JSON-able view; card numbers masked unless asked otherwise.

        Masked means the identifier and also any Luhn-valid run anywhere in the request,
        the answer and the error text (processing may echo a card number in either).
        """
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
            "lastError": self.last_error if unmasked else mask_data(self.last_error),
            "status": self.status,
            "request": request if unmasked else mask_data(request),
            "result": self.result if unmasked else mask_data(self.result),
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
    """Thread-safe; several processes may open the same file (SQLite locks it).

    `repair=False` (inspection commands, doctor) raises `JournalDamaged` instead of
    moving a damaged file aside.
    """

    PROBE_EVERY = 2.0  # seconds between "is there space again?" probes while degraded

    def __init__(self, path: str | os.PathLike[str], *, repair: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Appends commit without SQLite's fsync and then fsync the WAL file themselves,
        # outside the lock: an fsync takes milliseconds, and under the lock it held up
        # every reader (the register's turn reads and marks entries) and every other
        # append.  Entries up to `_durable` are known fsynced; nothing above it is sent.
        self._durable = 0
        self._durable_lock = threading.Lock()
        self._wal_fd: int | None = None
        self._failure: str | None = None
        self._probed_at = float("-inf")
        self.moved_aside: Path | None = None
        problem = self._open()
        if problem is not None:
            if not repair:
                self._db.close()
                raise JournalDamaged(self.path, problem)
            self._replace_damaged(problem)

    def _open(self) -> str | None:
        """Open (creating if needed); the integrity problem found, or None."""
        try:
            create_private(self.path)
            with private_umask():  # the -wal and -shm files hold the same data
                self._db = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._db.row_factory = sqlite3.Row
                try:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    # appended and marked in order, read back a page of pending entries
                    # at a time: SQLite's default 2 MB page cache only grows the RSS
                    self._db.execute("PRAGMA cache_size=-256")
                    problem = _quick_check(self._db)
                    if problem is None:
                        self._db.executescript(_SCHEMA + ";" + _META)
                except sqlite3.DatabaseError as exc:
                    if not _is_damage(exc):
                        self._db.close()
                        raise
                    problem = str(exc)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else describe_error(exc)
            raise JournalError(f"cannot open the offline journal {self.path}: {reason}") from None
        return problem

    def _replace_damaged(self, problem: str) -> None:
        """Keep the damaged file (and its -wal/-shm) under a new name; start a fresh one."""
        self._db.close()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        try:
            for suffix in ("-wal", "-shm", ""):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    os.rename(src, str(aside) + suffix)
        except OSError as exc:
            raise JournalError(
                f"offline journal {self.path} is damaged ({problem}) and cannot be moved"
                f" aside: {exc.strerror}"
            ) from None
        self.moved_aside = aside
        high = _highest_seq(aside)
        again = self._open()
        if again is not None:  # a brand-new file cannot be damaged unless the disk is
            self._db.close()
            raise JournalDamaged(self.path, again)
        start = FRESH_START_UNKNOWN if high is None else high
        try:
            self._db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('entries', ?)", (start,)
            )
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalError(
                f"cannot start a fresh journal {self.path}: {describe_error(exc)}"
            ) from None
        raise_alarm(
            self.path,
            {
                "at": datetime.now().isoformat(timespec="seconds"),
                "problem": problem,
                "movedTo": str(aside),
                "fix": f"posbridge journal salvage {aside}; then posbridge journal acknowledge",
            },
        )
        log.error(
            "offline journal %s was damaged (%s): moved to %s, a fresh journal is in use;"
            " run `posbridge journal salvage %s`",
            self.path,
            problem,
            aside,
            aside,
        )

    # ------------------------------------------------------------------ health

    @property
    def failure(self) -> str | None:
        """Why the last write failed, while no write has succeeded since (degraded)."""
        return self._failure

    def _failed(self, exc: sqlite3.Error) -> JournalUnavailable:
        """Called with the lock held, after a failed statement."""
        if self._db.in_transaction:  # SQLite may already have rolled back (disk full)
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error is the one worth reporting
        reason = describe_error(exc)
        if self._failure is None:
            log.error("offline journal %s unavailable: %s", self.path, reason)
        self._failure = reason
        return JournalUnavailable(self.path, reason)

    def _succeeded(self) -> None:
        if self._failure is not None:
            log.warning("offline journal %s writable again", self.path)
            self._failure = None

    def probe(self, force: bool = False) -> bool:
        """While degraded, try a small durable write (at most every PROBE_EVERY s)."""
        if self._failure is None:
            return True
        now = time.monotonic()
        if not force and now - self._probed_at < self.PROBE_EVERY:
            return False
        self._probed_at = now
        try:
            with self._lock:
                try:
                    self._db.execute("PRAGMA synchronous=FULL")
                    with transaction(self._db):
                        self._db.execute(
                            "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?)",
                            (str(time.time()),),
                        )
                except sqlite3.Error as exc:
                    raise self._failed(exc) from None
                self._succeeded()
        except JournalUnavailable:
            return False
        return True

    def disk_problem(self) -> str | None:
        """A full or read-only filesystem under the journal, seen before any write fails
        (the register's other files on it may be the first to find out)."""
        try:
            st = os.statvfs(self.path.parent)
        except OSError as exc:
            return f"I/O error ({exc.strerror})"
        if st.f_flag & os.ST_RDONLY:
            return "read-only (the filesystem is mounted read-only)"
        free = st.f_bavail * st.f_frsize
        if free < MIN_FREE_BYTES:
            return f"disk full ({free} bytes free)"
        return None

    def health(self) -> dict[str, Any]:
        """The journal part of the register's status: state, reason, alarm.  While a write
        has failed, a probe (rate-limited) finds out whether space has come back."""
        disk = self.disk_problem()
        if self._failure is not None and disk is None:
            self.probe()
        error = self._failure or disk
        alarm = read_alarm(self.path)
        state = "unavailable" if error else "damaged" if alarm else "ok"
        return {
            "state": state,
            "degraded": error is not None,
            "error": error,
            "alarm": alarm,
            "path": str(self.path),
        }

    # ------------------------------------------------------------------ writing

    def append(self, request: PreparedRequest, now: float | None = None) -> Entry:
        """Durably store a request (fsync) and return its entry; a repeat returns the first
        (once it is durable too: its own append may still be in its fsync)."""
        entry, fresh = self._insert(request, now)
        self.sync_through(entry.seq, undo=entry if fresh else None)
        return entry

    def sync_through(self, seq: int, undo: Entry | None = None) -> None:
        """Make sure every entry up to `seq` is on disk before any of them is sent.

        The commit has put them in the WAL file; one fsync of that file, started after
        the commit, covers them and every entry before them (entries commit in `seq`
        order).  Several appends' fsyncs run at once, and the filesystem serves them
        together.  `undo`: the entry this call has just written, taken back if the fsync
        fails (it was never durable, so it must never be sent)."""
        if seq <= self._durable:
            return
        try:
            self._fsync()
        except OSError as exc:
            reason = f"I/O error ({exc.strerror})" if exc.strerror else f"I/O error ({exc})"
            with self._lock:
                if seq <= self._durable:
                    return  # another thread's fsync, started after this commit, made it
                if undo is not None:
                    try:
                        self._db.execute(
                            "DELETE FROM entries WHERE seq=? AND status='pending'", (undo.seq,)
                        )
                    except sqlite3.Error:
                        pass  # the fsync's error is the one to report
                if self._failure is None:
                    log.error("offline journal %s unavailable: %s", self.path, reason)
                self._failure = reason
            raise JournalUnavailable(self.path, reason) from None
        with self._durable_lock:
            self._durable = max(self._durable, seq)

    def is_durable(self, seq: int) -> bool:
        """Known to be on disk (a replayer re-reads its page after making it so: an entry
        whose own fsync failed meanwhile is taken back, never sent)."""
        return seq <= self._durable

    def _fsync(self) -> None:
        """fsync the WAL file (the main file when there is no WAL, e.g. all checkpointed
        and removed by the last other connection to close)."""
        with self._durable_lock:  # one descriptor kept; each fsync syncs a copy of it
            wal = self._wal_descriptor()
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC) if wal is None else os.dup(wal)
        try:
            os.fdatasync(fd)  # as SQLite syncs: data and size, not times
        finally:
            os.close(fd)

    def _wal_descriptor(self) -> int | None:
        """The open WAL file, reopened if it was replaced; None when there is none."""
        wal = str(self.path) + "-wal"
        if self._wal_fd is not None:
            try:
                if os.fstat(self._wal_fd).st_ino == os.stat(wal).st_ino:
                    return self._wal_fd
            except FileNotFoundError:
                pass
            os.close(self._wal_fd)
            self._wal_fd = None
        try:
            self._wal_fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        return self._wal_fd

    def _insert(self, request: PreparedRequest, now: float | None) -> tuple[Entry, bool]:
        """Commit the entry (not yet fsynced); (the entry, whether this call wrote it)."""
        text = record_text(request)
        created = time.time() if now is None else now
        date = request.body.operation_date.isoformat(timespec="seconds")
        try:
            with self._lock:
                try:
                    self._db.execute("PRAGMA synchronous=NORMAL")  # the fsync is ours
                    with transaction(self._db):
                        cur = self._db.execute(
                            "INSERT OR IGNORE INTO entries (op, purchase_id, operation_id,"
                            " operation_date, request, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (
                                request.op.value,
                                request.purchase_id,
                                request.operation_id,
                                date,
                                text,
                                created,
                            ),
                        )
                except sqlite3.Error as exc:
                    raise self._failed(exc) from None
                self._succeeded()
        except JournalUnavailable:
            # a repeat of a step already written needs no write: the disk may be full
            known = self._existing(request.operation_id)
            if known is not None:
                return known, False
            raise
        if cur.rowcount == 1 and cur.lastrowid is not None:
            fresh = Entry(
                seq=cur.lastrowid,
                op=request.op.value,
                purchase_id=request.purchase_id,
                operation_id=request.operation_id,
                operation_date=date,
                request=loads(text),
                created_at=created,
                attempts=0,
                last_error=None,
                status=EntryStatus.PENDING,
                result=None,
            )
            return fresh, True
        entry = self.by_operation_id(request.operation_id)
        if entry is None:  # ignored as a repeat, yet not there: someone deleted it meanwhile
            raise JournalError(f"journal entry of operation {request.operation_id} vanished")
        return entry, False

    def _existing(self, operation_id: str) -> Entry | None:
        try:
            return self.by_operation_id(operation_id)
        except JournalUnavailable:
            return None

    def finish(
        self,
        seq: int,
        status: EntryStatus,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if status not in (EntryStatus.DONE, EntryStatus.REJECTED):
            raise ValueError(f"an entry finishes as done or rejected, not {status!r}")
        self._update(
            "UPDATE entries SET status=?, result=?, last_error=COALESCE(?, last_error),"
            " attempts=attempts+1, finished_at=? WHERE seq=?",
            (
                status,
                None if result is None else dumps(result).decode("utf-8"),
                None if error is None else mask_text(error),  # processing may quote a card
                time.time(),
                seq,
            ),
        )

    def failed_attempt(self, seq: int, error: str) -> None:
        self._update(
            "UPDATE entries SET attempts=attempts+1, last_error=? WHERE seq=?",
            (mask_text(error), seq),
        )

    def retry(self, seq: int) -> Entry:
        """Put a rejected entry back in line (it keeps its place in the order)."""
        entry = self.get(seq)
        if entry is None:
            raise JournalError(f"no journal entry {seq}")
        if entry.status != EntryStatus.REJECTED:
            raise JournalError(f"entry {seq} is {entry.status}, only rejected entries are retried")
        self._update(
            "UPDATE entries SET status=?, finished_at=NULL WHERE seq=?", (EntryStatus.PENDING, seq)
        )
        again = self.get(seq)
        if again is None:
            raise JournalError(f"journal entry {seq} vanished while it was put back in line")
        return again

    def prune(self, older_than_seconds: float, now: float | None = None) -> int:
        """Delete done entries finished more than `older_than_seconds` ago."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        with self._lock:
            try:
                cur = self._db.execute(
                    "DELETE FROM entries WHERE status='done' AND finished_at < ?", (cutoff,)
                )
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
            self._succeeded()
            return cur.rowcount

    def restore(self, entries: Iterable[Entry]) -> tuple[list[str], int]:
        """Put salvaged pending entries back, in order, under their original numbers where
        free (a fresh journal numbers above them); (operationIds recovered, already present)."""
        recovered: list[str] = []
        present = 0
        with self._lock:
            try:
                self._db.execute("PRAGMA synchronous=FULL")
                with transaction(self._db):
                    fresh = []
                    for e in entries:
                        if self._db.execute(
                            "SELECT 1 FROM entries WHERE operation_id=?", (e.operation_id,)
                        ).fetchone():
                            present += 1
                        else:
                            fresh.append(e)
                    # original numbers only if every one is free: a partial clash would
                    # reorder them; otherwise they all go after the live entries, in order
                    free = all(
                        self._db.execute("SELECT 1 FROM entries WHERE seq=?", (e.seq,)).fetchone()
                        is None
                        for e in fresh
                    )
                    for e in fresh:
                        self._db.execute(
                            "INSERT INTO entries (seq, op, purchase_id, operation_id,"
                            " operation_date, request, created_at, attempts, last_error, status)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                            (
                                e.seq if free else None,
                                e.op,
                                e.purchase_id,
                                e.operation_id,
                                e.operation_date,
                                e.raw_text or dumps(e.request).decode("utf-8"),
                                e.created_at,
                                e.attempts,
                                e.last_error,
                            ),
                        )
                        recovered.append(e.operation_id)
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
            self._succeeded()
        return recovered, present

    def _update(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
            self._succeeded()

    # ------------------------------------------------------------------ reading

    def next_pending(self, after: int = 0) -> Entry | None:
        return self._one(
            "SELECT * FROM entries WHERE status='pending' AND seq>? ORDER BY seq LIMIT 1", (after,)
        )

    def pending_page(self, after: int = 0, limit: int = 50) -> list[Entry]:
        """The next pending entries in order, a page at a time (one query, not one each)."""
        rows = self._all(
            "SELECT * FROM entries WHERE status='pending' AND seq>? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [_entry(row) for row in rows]

    def first_pending_seq(self) -> int | None:
        entry = self.next_pending()
        return None if entry is None else entry.seq

    def get(self, seq: int) -> Entry | None:
        return self._one("SELECT * FROM entries WHERE seq=?", (seq,))

    def by_operation_id(self, operation_id: str) -> Entry | None:
        return self._one("SELECT * FROM entries WHERE operation_id=?", (operation_id,))

    def for_purchase(self, purchase_id: str) -> list[Entry]:
        """Every entry of one purchase, in order."""
        rows = self._all("SELECT * FROM entries WHERE purchase_id=? ORDER BY seq", (purchase_id,))
        return [_entry(row) for row in rows]

    def entries(self, status: str | None = None) -> Iterator[Entry]:
        """Every entry in order, or those with one status (a command line's word is
        checked here, so a typo is a clear error rather than an empty list)."""
        try:
            wanted = None if status is None else EntryStatus(status)
        except ValueError:
            raise JournalError(
                f"unknown status {status!r}; expected one of {', '.join(EntryStatus)}"
            ) from None
        if wanted is None:
            rows = self._all("SELECT * FROM entries ORDER BY seq", ())
        else:
            rows = self._all("SELECT * FROM entries WHERE status=? ORDER BY seq", (wanted,))
        for row in rows:
            yield _entry(row)

    def counts(self) -> Counts:
        with self._lock:
            try:
                rows = dict(
                    self._db.execute(
                        "SELECT status, COUNT(*) FROM entries GROUP BY status"
                    ).fetchall()
                )
                oldest = self._db.execute(
                    "SELECT MIN(created_at) FROM entries WHERE status='pending'"
                ).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
        return Counts(
            rows.get(EntryStatus.PENDING, 0),
            rows.get(EntryStatus.DONE, 0),
            rows.get(EntryStatus.REJECTED, 0),
            oldest,
        )

    def pending_summary(self) -> tuple[int, float | None]:
        """(pending entries, the oldest one's creation time): what the limits are checked
        against after every append, read from the pending index alone (`counts` walks
        every entry kept, done ones included, which grows with the retention period)."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT COUNT(*), MIN(created_at) FROM entries WHERE status='pending'"
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
        return int(row[0]), row[1]

    def check(self) -> str | None:
        """The integrity problem of the open file, or None when it is sound."""
        with self._lock:
            try:
                return _quick_check(self._db)
            except sqlite3.DatabaseError as exc:
                return str(exc)

    def _one(self, sql: str, args: tuple[Any, ...]) -> Entry | None:
        with self._lock:
            try:
                row = self._db.execute(sql, args).fetchone()
            except sqlite3.Error as exc:
                raise self._failed(exc) from None
        return None if row is None else _entry(row)

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._failed(exc) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._durable_lock:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"


# ---------------------------------------------------------------------- integrity


def _quick_check(db: sqlite3.Connection) -> str | None:
    """`PRAGMA quick_check`: O(file size), no index cross-check; None when sound."""
    rows = [str(r[0]) for r in db.execute("PRAGMA quick_check(5)").fetchall()]
    if rows == ["ok"]:
        return None
    lines = [
        ln.strip() for r in rows for ln in r.splitlines() if ln.strip() and not ln.startswith("***")
    ]
    text = "; ".join(lines[:2]) + (f" (and {len(lines) - 2} more)" if len(lines) > 2 else "")
    return text[:200] or "integrity check failed"


def check_file(path: str | os.PathLike[str]) -> str | None:
    """Check a journal file without changing it; the problem found, or None."""
    p = Path(path)
    if not p.is_file():
        raise JournalError(f"{p}: no such file")
    with tempfile.TemporaryDirectory(prefix="posbridge-check-") as tmp:
        try:
            db = _open_copy(p, Path(tmp))
        except sqlite3.Error as exc:
            return str(exc)
        try:
            problem = _quick_check(db)
            if problem is None:
                db.execute("SELECT COUNT(*) FROM entries").fetchone()
            return problem
        except sqlite3.Error as exc:
            return str(exc)
        finally:
            db.close()


def _open_copy(path: Path, tmp: Path) -> sqlite3.Connection:
    """A connection to a private copy of a file (and its -wal): the original stays as is."""
    copy = tmp / "copy.sqlite"
    for suffix in ("", "-wal"):
        src = Path(str(path) + suffix)
        if src.exists():
            shutil.copyfile(src, str(copy) + suffix)
    _fit_page_count(copy)
    db = sqlite3.connect(copy, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode").fetchone()  # reads the header: NOTADB shows here
    return db


def _fit_page_count(copy: Path) -> None:
    """A truncated file still claims its old size in the header, and SQLite then calls
    even the intact pages malformed: make the copy's header match what is there."""
    with open(copy, "r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            return
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        if page_size < 512:
            return
        actual = os.fstat(f.fileno()).st_size // page_size
        if int.from_bytes(header[28:32], "big") > actual > 0:
            f.seek(28)
            f.write(actual.to_bytes(4, "big"))


def _highest_seq(path: Path) -> int | None:
    """The highest entry number a (damaged) journal used, if any part of it says."""
    with tempfile.TemporaryDirectory(prefix="posbridge-seq-") as tmp:
        try:
            db = _open_copy(path, Path(tmp))
        except (OSError, sqlite3.Error):
            return None
        try:
            high = _highest_in(db)
            return high or None
        finally:
            db.close()


@dataclass
class SalvageReport:
    recovered: int = 0
    present: int = 0  # already in the live journal (same operationId)
    unreadable: int = 0  # numbers whose row cannot be read (a damaged page)
    not_pending: int = 0  # readable, but sent or rejected already
    highest: int = 0  # the highest entry number looked at
    order: list[str] = field(default_factory=list)  # operationIds recovered, in order


def read_salvageable(path: str | os.PathLike[str]) -> tuple[list[Entry], SalvageReport]:
    """Every readable pending entry of a damaged file, in order, row by row: a damaged
    page costs the rows on it, not the rest."""
    report = SalvageReport()
    p = Path(path)
    if not p.is_file():
        raise JournalError(f"{p}: no such file")
    out: list[Entry] = []
    with tempfile.TemporaryDirectory(prefix="posbridge-salvage-") as tmp:
        try:
            db = _open_copy(p, Path(tmp))
        except sqlite3.Error as exc:
            raise JournalError(f"{p} cannot be read as a journal at all: {exc}") from None
        try:
            high = _highest_in(db)
            report.highest = high
            for seq in range(1, min(high, SALVAGE_MAX_SEQ) + 1):
                try:
                    row = db.execute("SELECT * FROM entries WHERE seq=?", (seq,)).fetchone()
                    if row is None:
                        continue
                    entry = _entry(row)
                except (sqlite3.Error, ValueError, TypeError, KeyError, IndexError):
                    report.unreadable += 1
                    continue
                if entry.status != EntryStatus.PENDING or not entry.operation_id:
                    report.not_pending += 1
                    continue
                out.append(entry)
        finally:
            db.close()
    return out, report


def _highest_in(db: sqlite3.Connection) -> int:
    """The highest entry number: autoincrement's own high-water mark when readable (a
    damaged row may carry any number), else the highest the b-tree still reaches."""
    try:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='entries'").fetchone()
        if row is not None and isinstance(row[0], int) and 0 < row[0] <= SALVAGE_MAX_SEQ:
            return int(row[0])
    except sqlite3.Error:
        pass
    found = [0]
    try:
        row = db.execute("SELECT MAX(seq) FROM entries").fetchone()
        if row is not None and isinstance(row[0], int):
            found.append(row[0])
    except sqlite3.Error:
        pass
    try:  # a table scan finds what the b-tree still reaches, up to the damage
        for row in db.execute("SELECT seq FROM entries"):
            if isinstance(row[0], int):
                found.append(row[0])
    except sqlite3.Error:
        pass
    return min(max(found), SALVAGE_MAX_SEQ)


def salvage(journal: Journal, path: str | os.PathLike[str]) -> SalvageReport:
    """Recover every readable pending entry of a damaged file into `journal`."""
    if Path(path).resolve() == journal.path.resolve():
        raise JournalError("salvage reads a moved-aside damaged file, not the live journal")
    entries, report = read_salvageable(path)
    report.order, report.present = journal.restore(entries)
    report.recovered = len(report.order)
    return report


# ---------------------------------------------------------------------- alarm


def alarm_path(journal_path: str | os.PathLike[str]) -> Path:
    p = Path(journal_path)
    return p.with_name(p.name + ".alarm")


def read_alarm(journal_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The unacknowledged damage alarm (the latest event, with a count), or None."""
    try:
        data = json.loads(alarm_path(journal_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"problem": f"unreadable alarm marker: {exc}", "events": 1}
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not events:
        return {"problem": "unreadable alarm marker", "events": 1}
    latest = dict(events[-1]) if isinstance(events[-1], dict) else {}
    latest["events"] = len(events)
    return latest


def raise_alarm(journal_path: str | os.PathLike[str], event: dict[str, Any]) -> None:
    """Add an event to the 0600 marker, atomically (a crash leaves the old or the new)."""
    marker = alarm_path(journal_path)
    events: list[Any] = []
    try:
        old = json.loads(marker.read_text(encoding="utf-8"))
        if isinstance(old, dict) and isinstance(old.get("events"), list):
            events = old["events"]
    except (OSError, ValueError):
        pass
    events.append(event)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps({"events": events}, indent=1).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, marker)


def acknowledge_alarm(journal_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Clear the alarm; the events it held (empty when there was none)."""
    marker = alarm_path(journal_path)
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        data = {"events": [{"problem": "unreadable alarm marker"}]}
    marker.unlink()
    events = data.get("events") if isinstance(data, dict) else None
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


_BODY_KEY = ',"body":'


def record_text(request: PreparedRequest) -> str:
    """How an entry stores its request: JSON with the body last, encoded once, as sent."""
    return (
        '{"op":'
        + dumps(request.op.value).decode()
        + ',"purchaseId":'
        + dumps(request.purchase_id).decode()
        + ',"targetOperationId":'
        + dumps(request.target_operation_id).decode()
        + _BODY_KEY
        + request.payload().decode("utf-8")
        + "}"
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
        # masked when written; again when read, for rows an older version wrote
        last_error=None if row["last_error"] is None else mask_text(row["last_error"]),
        status=EntryStatus(row["status"]),
        result=None if row["result"] is None else loads(row["result"]),
        raw_body=_raw_body(row["request"]),
        raw_text=row["request"],
    )
