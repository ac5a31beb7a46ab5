"""Each cheque's fiscal state, on disk before the registrar is touched.

A fiscal document cannot be taken back, so the POS must be able to retry a print
blindly: after a success the retry gets the same number and sign without printing;
after a crash mid-print it finds a record saying a print was under way, and the desk
asks the device what became of it before printing again.  The records live in a table
of their own in the cheque file (`cheques.sqlite`, 0600), written with
`synchronous=FULL`: a few writes per receipt, and each must survive a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bridge.private_files import create_private, private_umask

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscal_receipts (
    cheque_id   TEXT PRIMARY KEY,
    stage       TEXT NOT NULL,
    touched_at  REAL NOT NULL,
    data        TEXT NOT NULL
);
"""


class Stage(StrEnum):
    PRINTING = "printing"  # the device may have been touched: ask it before printing again
    CLOSING = "closing"  # the close was sent: the document may exist (compare last_before)
    DONE = "done"  # a fiscal document exists: `answer` is what every retry gets
    FAILED = "failed"  # `document_state` says where the document was left


@dataclass
class FiscalRecord:
    cheque_id: str
    stage: Stage
    registrar: str
    attempts: int = 0
    document_state: str | None = None  # drivers.fiscal.base.DocumentState value
    last_before: int | None = None  # the device's last document number before our receipt
    error: str | None = None
    answer: dict[str, Any] | None = None
    touched_at: float = field(default_factory=time.time)


class FiscalStoreError(Exception):
    """The fiscal records cannot be used (path and reason in the message)."""


class FiscalStore:
    """Thread-safe; one per service.  Records of cheques the cheque store has pruned are
    dropped when the store opens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            create_private(path, nofollow=True)
            with private_umask():
                self._db = sqlite3.connect(
                    path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._prune()
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise FiscalStoreError(f"cannot open the fiscal records in {path}: {reason}") from None

    def _prune(self) -> None:
        has_cheques = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='cheques'"
        ).fetchone()
        if has_cheques:
            self._db.execute(
                "DELETE FROM fiscal_receipts WHERE cheque_id NOT IN (SELECT id FROM cheques)"
            )

    def get(self, cheque_id: str) -> FiscalRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM fiscal_receipts WHERE cheque_id=?", (cheque_id,)
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        data["stage"] = Stage(data["stage"])
        return FiscalRecord(**data)

    def put(self, record: FiscalRecord) -> None:
        """Write through (fsynced): the caller touches the device only after this returns."""
        record.touched_at = time.time()
        data = asdict(record)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            self._db.execute(
                "INSERT INTO fiscal_receipts (cheque_id, stage, touched_at, data)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (cheque_id) DO UPDATE SET"
                " stage=excluded.stage, touched_at=excluded.touched_at, data=excluded.data",
                (record.cheque_id, record.stage.value, record.touched_at, text),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
