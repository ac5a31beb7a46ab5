"""The sandbox's SQLite file: schema, first-run seeding, one guarded connection.

Amounts are stored as integer cents so SQL sums stay exact (SQLite has no decimal type
and would add REAL values in binary floating point).  WAL with synchronous=NORMAL keeps
a commit cheap: the sandbox must not be the slow side of a benchmark.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from stdnum import ean

from sandbox.rules import Rules, SeedError, seed_decimal, to_cents

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registers (
    login TEXT PRIMARY KEY, password_sha256 TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (number TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS phones (phone TEXT PRIMARY KEY, card TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS goods (
    goods_id TEXT PRIMARY KEY, barcode TEXT, name TEXT NOT NULL, grp TEXT NOT NULL,
    price_cents INTEGER);
CREATE TABLE IF NOT EXISTS purchases (
    purchase_id TEXT PRIMARY KEY, register TEXT NOT NULL, card TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, refund_of TEXT,
    total_cents INTEGER NOT NULL DEFAULT 0, discount_cents INTEGER NOT NULL DEFAULT 0,
    lines TEXT NOT NULL DEFAULT '[]', operation_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY, card TEXT NOT NULL, purchase_id TEXT, operation_id TEXT,
    kind TEXT NOT NULL, cents INTEGER NOT NULL, status TEXT NOT NULL, operation_date TEXT);
CREATE INDEX IF NOT EXISTS entries_by_card ON entries (card, status, kind, cents);
CREATE INDEX IF NOT EXISTS entries_by_purchase ON entries (purchase_id);
CREATE TABLE IF NOT EXISTS operations (
    register TEXT NOT NULL, operation_id TEXT NOT NULL, key TEXT NOT NULL,
    purchase_id TEXT, transaction_id TEXT NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (register, operation_id));
CREATE INDEX IF NOT EXISTS operations_by_transaction ON operations (transaction_id);
"""

REGISTER_STATES = ("active", "blocked")
CARD_STATES = ("active", "inactive", "blocked", "expired")


def password_digest(login: str, password: str) -> str:
    """Not a password store: keeps the seed's plain passwords out of the database file."""
    return hashlib.sha256(f"{login}\0{password}".encode()).hexdigest()


def load_seed(seed: str | Path | None) -> dict[str, Any]:
    try:
        if seed is None:
            text = resources.files("sandbox").joinpath("seed.toml").read_text("utf-8")
        else:
            text = Path(seed).read_text("utf-8")
        return tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SeedError(f"cannot read seed {seed or 'sandbox/seed.toml'}: {exc}") from exc


class Store:
    """One connection shared by all request threads, serialised by `lock`."""

    def __init__(self, db_path: str | Path, seed: str | Path | None = None) -> None:
        self.path = Path(db_path)
        self.lock = threading.RLock()
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh:
            # card data and register credentials: owner-only, before SQLite writes a byte
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(SCHEMA)
        if fresh or self.setting("rules") is None:
            self._seed(load_seed(seed))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def setting(self, key: str) -> Any:
        with self.lock:
            row = self.conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def rules(self) -> Rules:
        return Rules.from_seed(self.setting("rules") or {})

    def _seed(self, seed: Mapping[str, Any]) -> None:
        rules = Rules.from_seed(seed)  # validates before anything is written
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO settings VALUES ('rules', ?)",
                (json.dumps(rules.to_seed()),),
            )
            for i, reg in enumerate(seed.get("registers", [])):
                status = reg.get("status", "active")
                if status not in REGISTER_STATES or not reg.get("login"):
                    raise SeedError(
                        f"registers[{i}]: needs a login and status in {REGISTER_STATES}"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO registers VALUES (?, ?, ?)",
                    (
                        reg["login"],
                        password_digest(reg["login"], str(reg.get("password", ""))),
                        status,
                    ),
                )
            for i, card in enumerate(seed.get("cards", [])):
                number, state = str(card.get("number", "")), card.get("state", "active")
                if not ean.is_valid(number) or state not in CARD_STATES:
                    raise SeedError(
                        f"cards[{i}]: needs a valid EAN-13 number and state in {CARD_STATES}"
                    )
                db.execute("INSERT OR REPLACE INTO cards VALUES (?, ?)", (number, state))
                opening = to_cents(seed_decimal(card.get("balance", 0), f"cards[{i}].balance"))
                if opening:
                    db.execute(
                        "INSERT INTO entries (card, kind, cents, status) "
                        "VALUES (?, 'opening', ?, 'final')",
                        (number, opening),
                    )
                for phone in card.get("phones", []):
                    digits = re.sub(r"\D", "", str(phone))
                    if not digits:
                        raise SeedError(f"cards[{i}].phones: {phone!r} has no digits")
                    db.execute("INSERT OR REPLACE INTO phones VALUES (?, ?)", (digits, number))
            for i, good in enumerate(seed.get("goods", [])):
                barcode = good.get("barcode")
                if not good.get("goods_id") or (barcode and not ean.is_valid(str(barcode))):
                    raise SeedError(f"goods[{i}]: needs a goods_id and a valid barcode")
                price = good.get("price")
                db.execute(
                    "INSERT OR REPLACE INTO goods VALUES (?, ?, ?, ?, ?)",
                    (
                        str(good["goods_id"]),
                        barcode,
                        str(good.get("name", good["goods_id"])),
                        str(good.get("group", "default")),
                        None
                        if price is None
                        else to_cents(seed_decimal(price, f"goods[{i}].price")),
                    ),
                )
