"""Which goods id a fiscal item is: the POS's sale frames carry a name and a price, never our id.

Processing knows goods by the ids we pushed (`posbridge catalog push FILE`), and the local
state of a push keeps only those ids and a hash.  The names and barcodes live in the
catalogue file itself, so the index is built from that file, restricted to the ids
processing accepted when a push state exists (an item processing never accepted is no
better than an unknown one).  A registrar truncates names (40 characters in 0x80), so a
unique prefix of a catalogue name matches too.

An item that matches nothing still goes to processing, under a stable made-up id
(`pos:` and a hash of its name): the customer bought it and the cheque's total must be
the receipt's, so leaving it out would accrue less than the customer sees on paper.
Processing prices an id it does not know by its default group; the count of such items
is shown in metrics and `posbridge doctor`, so the shop can fix its catalogue.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from bridge.catalog.source import SourceError, read_rows
from bridge.catalog.validate import validate

log = logging.getLogger("posbridge.passthrough.matching")

How = Literal["barcode", "scan", "name", "prefix", "unmatched"]
MIN_PREFIX = 10  # shorter names are too likely to be the start of several products
UNMATCHED_PREFIX = "pos:"


def name_key(name: str) -> str:
    """Case and spacing as registrars and spreadsheets differ in them."""
    return re.sub(r"\s+", " ", name).strip().casefold()


def code_key(code: str) -> str:
    """A GTIN-14 with a leading zero and the EAN-13 in it are one product."""
    code = code.strip()
    return code.lstrip("0") or code if code.isdigit() else code


def unmatched_id(name: str) -> str:
    """A goods id the contract accepts (1..64 characters), the same for the same name."""
    digest = hashlib.blake2b(name_key(name).encode("utf-8"), digest_size=8).hexdigest()
    return UNMATCHED_PREFIX + digest


@dataclass(frozen=True)
class Match:
    goods_id: str
    how: How
    barcode: str | None = None

    @property
    def matched(self) -> bool:
        return self.how != "unmatched"


@dataclass(frozen=True)
class _Index:
    by_barcode: dict[str, tuple[str, str]]  # barcode -> (goods id, name key)
    names: list[tuple[str, str]]  # (name key, goods id), sorted: exact and prefix lookups
    loaded_from: tuple[float, int] | None  # the file's (mtime, size) it was built from


_EMPTY = _Index({}, [], None)


class CatalogIndex:
    """Barcode and name lookups over the pushed catalogue; reloaded when the file changes.

    Loading reads the whole file (once at start, and in the background after a change),
    so a lookup during a sale never waits for the disk.
    """

    def __init__(self, path: Path | None, state_path: Path | None = None) -> None:
        self.path = path
        self.state_path = state_path
        self.error: str | None = None
        self._index = _EMPTY
        self._reloading = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._index.names)

    def load(self) -> None:
        """Build the index now; a problem is kept in `error` (and logged), never raised."""
        if self.path is None:
            return
        with self._reloading:
            try:
                stamp = _stamp(self.path)
                pushed = _pushed_ids(self.state_path)
                index = _build(self.path, pushed, stamp)
            except (SourceError, OSError, sqlite3.Error) as exc:
                self.error = f"catalogue {self.path}: {exc}"
                log.error("pass-through item matching: %s", self.error)
                return
            self._index, self.error = index, None
            log.info(
                "pass-through item matching: %d catalogue item(s) from %s%s",
                len(index.names),
                self.path,
                "" if pushed is None else f" (of {len(pushed)} accepted by processing)",
            )

    def refresh(self) -> None:
        """Reload in the background if the file changed since it was read."""
        if self.path is None or self._reloading.locked():
            return
        try:
            stamp = _stamp(self.path)
        except OSError:
            return
        if stamp != self._index.loaded_from:
            threading.Thread(target=self.load, name="posbridge-catalog-index", daemon=True).start()

    def by_barcode(self, code: str) -> str | None:
        found = self._index.by_barcode.get(code_key(code))
        return None if found is None else found[0]

    def name_of_barcode(self, code: str) -> str | None:
        found = self._index.by_barcode.get(code_key(code))
        return None if found is None else found[1]

    def by_name(self, name: str) -> tuple[str, How] | None:
        """The goods id of an exact name, else of the one catalogue name it is a prefix of."""
        key = name_key(name)
        if not key:
            return None
        names = self._index.names
        i = bisect.bisect_left(names, (key, ""))
        if i < len(names) and names[i][0] == key:
            return names[i][1], "name"
        if len(key) < MIN_PREFIX or i >= len(names) or not names[i][0].startswith(key):
            return None
        if i + 1 < len(names) and names[i + 1][0].startswith(key):
            return None  # several products start so: which one is unknown
        return names[i][1], "prefix"


def _stamp(path: Path) -> tuple[float, int]:
    st = os.stat(path)
    return st.st_mtime, st.st_size


def _pushed_ids(state_path: Path | None) -> set[str] | None:
    """The ids processing accepted, or None when no push was recorded (then all count)."""
    if state_path is None or not state_path.exists():
        return None
    conn = sqlite3.connect(f"file:{quote(str(state_path))}?mode=ro", uri=True, timeout=5)
    try:
        return {str(r[0]) for r in conn.execute("SELECT goods_id FROM pushed")}
    finally:
        conn.close()


def _build(path: Path, pushed: set[str] | None, stamp: tuple[float, int]) -> _Index:
    by_barcode: dict[str, tuple[str, str]] = {}
    by_name: dict[str, str] = {}
    for raw in read_rows(path):
        item, _ = validate(raw)
        if item is None or (pushed is not None and item.goods_id not in pushed):
            continue
        key = name_key(item.name)
        by_name.setdefault(key, item.goods_id)  # the file's first of a name wins
        if item.barcode:
            by_barcode.setdefault(code_key(item.barcode), (item.goods_id, key))
    return _Index(by_barcode, sorted(by_name.items()), stamp)
