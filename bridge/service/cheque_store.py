"""The register's cheques on disk: one SQLite file beside the journal, mode 0600.

A cheque may hold bonuses at processing (a redemption is held until confirm or
cancel), so it must outlive the process: a restart, graceful or `kill -9`, finds every
open cheque again with its lines, card, payments and the purchase's stored step
requests, and a confirm or cancel after the restart resends the same ids.  Each state
change is written through; the file holds card numbers, hence 0600 (and its -wal/-shm
files too).  WAL with `synchronous=NORMAL` survives a killed process; the writes that
precede a redemption or a refund are fsynced (`durable=True`) to survive a power cut.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.loyalty.protocol import Identifier, loads
from bridge.loyalty.purchase import Purchase, Sender
from bridge.loyalty.request import PreparedRequest
from bridge.private_files import create_private, private_umask
from bridge.service.cheque import Line, RefundRecord, RegisterCheque

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cheques (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    touched_at  REAL NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cheques_state ON cheques (state);
"""

OPEN_STATES = ("open", "calculated")


class ChequeStoreError(Exception):
    """The cheque file cannot be used (path and reason in the message)."""


class ChequeStore:
    """Thread-safe; one writer process per register (the service)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._written: dict[str, bytes] = {}  # open cheque -> digest of its last record
        try:
            create_private(self.path, nofollow=True)
            with private_umask():  # the -wal and -shm files hold the same card numbers
                self._db = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                # written on every change but read back only at start: a small page cache
                self._db.execute("PRAGMA cache_size=-256")
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ChequeStoreError(f"cannot open the cheque file {self.path}: {reason}") from None

    # ------------------------------------------------------------------ writing

    def save(self, cheque: RegisterCheque, durable: bool = False) -> None:
        """Write the cheque; an open cheque whose record did not change since its last
        write (the till calculating again) is not written again unless `durable`."""
        text = record_json(record(cheque))
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        with self._lock:  # sqlite3.Error goes to the caller: the API answers a full disk
            if not durable and self._written.get(cheque.id) == digest:
                return
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute(
                    "INSERT INTO cheques (id, state, touched_at, data) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET state=excluded.state,"
                    " touched_at=excluded.touched_at, data=excluded.data",
                    (cheque.id, cheque.state, cheque.touched_at, text),
                )
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
            if cheque.is_open:
                self._written[cheque.id] = digest
            else:
                self._written.pop(cheque.id, None)

    def prune(self, older_than_seconds: float, now: float | None = None) -> int:
        """Forget closed cheques untouched for `older_than_seconds` (open ones never)."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM cheques WHERE state NOT IN (?, ?) AND touched_at < ?",
                (*OPEN_STATES, cutoff),
            )
            return cur.rowcount

    # ------------------------------------------------------------------ reading

    def load(self, cheque_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data, touched_at FROM cheques WHERE id=?", (cheque_id,)
            ).fetchone()
        return None if row is None else _data(row)

    def open_records(self) -> list[dict[str, Any]]:
        """Every open cheque, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data, touched_at FROM cheques WHERE state IN (?, ?) ORDER BY seq",
                OPEN_STATES,
            ).fetchall()
        return [_data(row) for row in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM cheques").fetchone()
        return int(row[0] or 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM cheques GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ChequeStore({str(self.path)!r})"


# ---------------------------------------------------------------------- the record


def _data(row: tuple[str, float]) -> dict[str, Any]:
    data = dict(loads(row[0]))
    data["touchedAt"] = row[1]
    return data


def record_json(data: dict[str, Any]) -> str:
    """JSON with Decimals as strings of their exact digits (the stdlib's C encoder: this
    runs on every change of every cheque, in the till's calls)."""
    return json.dumps(data, default=_plain, separators=(",", ":"), ensure_ascii=False)


def _plain(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not stored in a cheque record")


def record(cheque: RegisterCheque) -> dict[str, Any]:
    """A cheque as JSON-able data; `touched_at` has a column of its own (not compared)."""
    purchase = cheque.purchase
    return {
        "v": 1,
        "id": cheque.id,
        "number": cheque.number,
        "openedAt": cheque.opened_at.isoformat(),
        "state": cheque.state,
        "card": cheque.card,
        "lines": [
            {
                "goodsId": ln.goods_id,
                "name": ln.name,
                "price": ln.price,
                "quantity": ln.quantity,
                "amount": ln.amount,
                "barcode": ln.barcode,
            }
            for ln in cheque.lines
        ],
        "balanceBefore": cheque.balance_before,
        "discount": cheque.discount,
        "available": cheque.available,
        "redeemed": cheque.redeemed,
        "accrued": cheque.accrued,
        "balanceAfter": cheque.balance_after,
        "offline": cheque.offline,
        "queued": cheque.queued,
        "cardBlocked": cheque.card_blocked,
        "cashierMessage": cheque.cashier_message,
        "chequeMessage": cheque.cheque_message,
        "expired": cheque.expired,
        "refunds": [
            {
                "refundId": r.refund_id,
                "operationId": r.operation_id,
                "lines": [[pos, qty, amount] for pos, (qty, amount) in r.lines.items()],
                "queued": r.queued,
            }
            for r in cheque.refunds
        ],
        "purchase": None if purchase is None else _purchase_record(purchase),
    }


def _purchase_record(purchase: Purchase) -> dict[str, Any]:
    ident = purchase.identifier
    return {
        "purchaseId": purchase.purchase_id,
        "identifier": None
        if ident is None
        else ident.model_dump(mode="json", by_alias=True, exclude_none=True),
        "payments": [[op_id, amount] for op_id, amount in purchase.payments],
        # the steps kept for a retry: the very request, so a resend carries the same ids
        "pending": [
            {
                "key": key,
                "op": req.op.value,
                "purchaseId": req.purchase_id,
                "targetOperationId": req.target_operation_id,
                "body": req.payload().decode("utf-8"),
            }
            for key, req in purchase._pending.items()
        ],
    }


def restore(data: dict[str, Any], sender: Callable[[RegisterCheque], Sender]) -> RegisterCheque:
    """The cheque `record` wrote; `sender` gives the purchase its sender back."""
    cheque = RegisterCheque(
        id=data["id"],
        number=data["number"],
        opened_at=datetime.fromisoformat(data["openedAt"]),
        lines=[
            Line(
                goods_id=x["goodsId"],
                name=x["name"],
                price=_dec(x["price"]),
                quantity=_dec(x["quantity"]),
                amount=_dec(x["amount"]),
                barcode=x.get("barcode"),
            )
            for x in data["lines"]
        ],
        card=data.get("card"),
        state=data["state"],
        balance_before=_opt(data.get("balanceBefore")),
        discount=_dec(data["discount"]),
        available=_dec(data["available"]),
        redeemed=_dec(data["redeemed"]),
        accrued=_opt(data.get("accrued")),
        balance_after=_opt(data.get("balanceAfter")),
        offline=bool(data["offline"]),
        queued=bool(data["queued"]),
        card_blocked=bool(data["cardBlocked"]),
        cashier_message=data.get("cashierMessage"),
        cheque_message=data.get("chequeMessage"),
        expired=bool(data.get("expired")),
        refunds=[
            RefundRecord(
                refund_id=r["refundId"],
                operation_id=r["operationId"],
                lines={int(p): (_dec(q), _dec(a)) for p, q, a in r["lines"]},
                queued=bool(r["queued"]),
            )
            for r in data.get("refunds", [])
        ],
        touched_at=float(data["touchedAt"]),
    )
    stored = data.get("purchase")
    if stored is not None:
        ident = stored.get("identifier")
        purchase = Purchase(
            sender(cheque),
            cheque.wire(),
            None if ident is None else Identifier.model_validate(ident),
            purchase_id=stored["purchaseId"],
            payments=[(str(op_id), _dec(amount)) for op_id, amount in stored["payments"]],
            _pending={step["key"]: _request(step) for step in stored["pending"]},
        )
        cheque.purchase = purchase
    return cheque


def _request(step: dict[str, Any]) -> PreparedRequest:
    raw = str(step["body"]).encode("utf-8")
    return PreparedRequest.from_record(
        {
            "op": step["op"],
            "purchaseId": step["purchaseId"],
            "targetOperationId": step["targetOperationId"],
            "body": loads(raw),
        },
        raw,
    )


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _opt(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)
