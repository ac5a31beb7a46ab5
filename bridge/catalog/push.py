"""The diff between a catalogue file and what processing accepted, and its upload.

The file's valid rows are staged in a temporary table next to the state, the diff is
one SQL join, and the items to send are numbered in file order so the upload can
walk them a chunk at a time.  A chunk's accepted items are recorded only after
processing answered for it; a rejected item is recorded with processing's reason and
stays pending, so the next run tries it again.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from bridge.catalog.source import RawRow
from bridge.catalog.state import FULL_IN_PROGRESS, CatalogState
from bridge.catalog.validate import Item, RowError, shown, validate
from bridge.loyalty.errors import LoyaltyError
from bridge.loyalty.protocol import GOODS_IMPORT_CHUNK, ErrorCode, GoodsItem

if TYPE_CHECKING:
    from bridge.loyalty.client import LoyaltyClient

_STAGING = """
CREATE TEMP TABLE incoming (
    goods_id TEXT PRIMARY KEY, row INTEGER NOT NULL, line INTEGER NOT NULL, hash BLOB NOT NULL,
    barcode TEXT, name TEXT NOT NULL, grp TEXT, price TEXT, dup INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TEMP TABLE invalid_ids (goods_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TEMP TABLE pending (
    seq INTEGER PRIMARY KEY, goods_id TEXT NOT NULL, hash BLOB NOT NULL, kind TEXT NOT NULL,
    row INTEGER NOT NULL, barcode TEXT, name TEXT NOT NULL, grp TEXT, price TEXT
);
"""


class ChangeKind(enum.StrEnum):
    """Why an item is sent; the staging SQL writes these strings, the JSON shows them."""

    NEW = "new"
    CHANGED = "changed"
    SAME = "same"  # at processing as it is: sent only by a full push


class PendingRow(NamedTuple):
    """One row of the `pending` table, in its column order (SELECT lists them so)."""

    seq: int
    goods_id: str
    hash: bytes
    kind: str
    row: int
    barcode: str | None
    name: str
    grp: str | None
    price: str | None

    def item(self) -> GoodsItem:
        price = None if self.price is None else Decimal(self.price)
        return Item(self.goods_id, self.barcode, self.name, self.grp, price).wire()


_PLAN_SELECT = (
    "INSERT INTO pending (goods_id, hash, kind, row, barcode, name, grp, price)"
    " SELECT i.goods_id, i.hash,"
    " CASE WHEN p.goods_id IS NULL THEN 'new' WHEN p.hash != i.hash THEN 'changed' ELSE 'same' END,"
    " i.row, i.barcode, i.name, i.grp, i.price"
    " FROM incoming i LEFT JOIN main.pushed p ON p.goods_id = i.goods_id AND ? = 0"
    " WHERE i.dup = 0"
)
_PLAN_ALL = _PLAN_SELECT + " ORDER BY i.row"
_PLAN_DIFF = _PLAN_SELECT + " AND (p.goods_id IS NULL OR p.hash != i.hash) ORDER BY i.row"
_BATCH = 2000  # rows staged per transaction


@dataclass(frozen=True)
class Plan:
    valid: int  # rows that passed validation (and are unique)
    invalid: int
    new: int
    changed: int
    unchanged: int  # in the file and at processing as they are; sent anyway by a full push
    deleted: int  # pushed before, gone from the file now
    to_send: int
    replace: bool  # the first chunk carries `replace: true`
    resuming_full: bool  # a full push was interrupted after its replace chunk

    @property
    def chunks(self) -> int:
        return -(-self.to_send // GOODS_IMPORT_CHUNK)


@dataclass(frozen=True)
class PendingItem:
    kind: ChangeKind
    row: int
    item: GoodsItem


@dataclass
class ItemRejection:
    goods_id: str | None
    row: int | None
    error: str


@dataclass
class UploadReport:
    chunks_total: int
    chunks_done: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    rejections: list[ItemRejection] = field(default_factory=list)  # the first REJECTIONS_KEPT
    unconfirmed: int = 0  # sent, but processing's answer did not say which were taken
    refused: str | None = None  # a whole chunk refused: code and message
    error: LoyaltyError | None = None  # processing unreachable or misbehaving; rerun to continue

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and self.refused is None
            and self.unconfirmed == 0
            and self.chunks_done == self.chunks_total
        )


REJECTIONS_KEPT = 200


class Catalogue:
    """A catalogue file staged against one state; build with `load`, then `plan`."""

    def __init__(self, state: CatalogState) -> None:
        self.state = state
        self.conn = state.conn
        self.conn.executescript(
            "DROP TABLE IF EXISTS temp.incoming; DROP TABLE IF EXISTS temp.invalid_ids;"
            " DROP TABLE IF EXISTS temp.pending;" + _STAGING
        )
        self.valid = 0
        self.invalid = 0
        self._plan: Plan | None = None

    # ------------------------------------------------------------------ staging

    def load(self, rows: Iterable[RawRow], on_error: Callable[[RowError], None]) -> None:
        """Validate and stage every row; each problem goes to `on_error` as it is found."""
        remaining = iter(rows)
        while True:
            with self.state.transaction(immediate=False):  # staging: temporary tables only
                staged = 0
                for raw in itertools.islice(remaining, _BATCH):
                    self._stage(raw, on_error)
                    staged += 1
            if staged < _BATCH:
                return

    def _stage(self, raw: RawRow, on_error: Callable[[RowError], None]) -> None:
        item, errors = validate(raw)
        if item is None:
            self.invalid += 1
            for err in errors:
                on_error(err)
            gid = raw.fields.get("goodsId")
            if isinstance(gid, str | int) and not isinstance(gid, bool) and str(gid).strip():
                self.conn.execute(
                    "INSERT INTO invalid_ids VALUES (?) ON CONFLICT DO NOTHING", (str(gid).strip(),)
                )
            return
        cur = self.conn.execute(
            "INSERT INTO incoming (goods_id, row, line, hash, barcode, name, grp, price)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(goods_id) DO NOTHING",
            (
                item.goods_id,
                raw.number,
                raw.line,
                item.content_hash(),
                item.barcode,
                item.name,
                item.group,
                item.price_text,
            ),
        )
        if cur.rowcount == 1:
            self.valid += 1
            return
        first_row, first_line, was_dup = self.conn.execute(
            "SELECT row, line, dup FROM incoming WHERE goods_id=?", (item.goods_id,)
        ).fetchone()
        if not was_dup:  # the first occurrence is left out too: which one is right is unknown
            self.conn.execute("UPDATE incoming SET dup=1 WHERE goods_id=?", (item.goods_id,))
            self.valid -= 1
            self.invalid += 1
        self.invalid += 1
        on_error(
            RowError(
                raw.number,
                raw.line,
                "goodsId",
                shown(item.goods_id),
                f"duplicate goodsId, also on row {first_row} (line {first_line});"
                " each goodsId may appear once, both rows are left out",
            )
        )

    # ------------------------------------------------------------------ diff

    def plan(self, *, full: bool, ignore_pushed: bool = False) -> Plan:
        """Number the items to send; `ignore_pushed` treats the record as empty."""
        resuming_full = (
            full
            and not ignore_pushed
            and self.state.get(FULL_IN_PROGRESS) is not None
            # items pushed since the replace but gone from this file: only a new replace
            # removes them
            and self._deleted_count() == 0
        )
        send_all = (full and not resuming_full) or ignore_pushed
        with self.state.transaction(immediate=False) as conn:  # reads main, writes temp only
            conn.execute("DELETE FROM pending")
            conn.execute(_PLAN_ALL if send_all else _PLAN_DIFF, (1 if ignore_pushed else 0,))
        kinds = dict(
            self.conn.execute("SELECT kind, count(*) FROM pending GROUP BY kind").fetchall()
        )
        new, changed = int(kinds.get(ChangeKind.NEW, 0)), int(kinds.get(ChangeKind.CHANGED, 0))
        deleted = 0 if ignore_pushed else self._deleted_count()
        self._plan = Plan(
            valid=self.valid,
            invalid=self.invalid,
            new=new,
            changed=changed,
            unchanged=self.valid - new - changed,
            deleted=deleted,
            to_send=new + changed + int(kinds.get(ChangeKind.SAME, 0)),
            replace=full and not resuming_full,
            resuming_full=resuming_full,
        )
        return self._plan

    _DELETED = (
        " FROM main.pushed p"
        " WHERE NOT EXISTS (SELECT 1 FROM incoming i WHERE i.goods_id = p.goods_id)"
        " AND NOT EXISTS (SELECT 1 FROM invalid_ids v WHERE v.goods_id = p.goods_id)"
    )

    def _deleted_count(self) -> int:
        return int(self.conn.execute("SELECT count(*)" + self._DELETED).fetchone()[0])

    def deleted_ids(self, limit: int | None = None) -> list[str]:
        sql = "SELECT p.goods_id" + self._DELETED + " ORDER BY p.goods_id"
        if limit is not None:
            return [r[0] for r in self.conn.execute(sql + " LIMIT ?", (limit,))]
        return [r[0] for r in self.conn.execute(sql)]

    def pending(self) -> Iterator[PendingItem]:
        """The items to send, in file order (for a dry run)."""
        last = 0
        while True:
            rows = self._chunk(last)
            if not rows:
                return
            for row in rows:
                yield PendingItem(ChangeKind(row.kind), row.row, row.item())
            last = rows[-1].seq

    def _chunk(self, after: int) -> list[PendingRow]:
        rows = self.conn.execute(
            "SELECT seq, goods_id, hash, kind, row, barcode, name, grp, price FROM pending"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, GOODS_IMPORT_CHUNK),
        ).fetchall()
        return list(map(PendingRow._make, rows))

    # ------------------------------------------------------------------ upload

    def upload(
        self,
        client: LoyaltyClient,
        progress: Callable[[int], None] = lambda n: None,
    ) -> UploadReport:
        """Send the plan chunk by chunk; stops at the first chunk that is not answered."""
        if self._plan is None:
            raise RuntimeError("plan() first")
        plan = self._plan
        report = UploadReport(chunks_total=plan.chunks)
        replace = plan.replace
        last = 0
        self.state.push_started()
        while True:
            rows = self._chunk(last)
            if not rows:
                break
            goods = [r.item() for r in rows]
            try:
                response = client.import_goods(goods, replace=replace)
            except LoyaltyError as exc:
                report.error = exc
                return report
            report.sent += len(rows)
            if response.code != ErrorCode.OK:
                report.refused = f"{response.code}: {response.error_message or '-'}"
                return report
            self._settle(rows, response.accepted, response.rejected, replace, report)
            replace = False
            report.chunks_done += 1
            last = rows[-1].seq
            progress(len(rows))
        if report.complete:
            self.state.push_completed(plan.replace or plan.resuming_full)
            with self.state.transaction():  # rejections of items no longer in the file
                self.conn.execute(
                    "DELETE FROM rejected WHERE goods_id NOT IN (SELECT goods_id FROM incoming)"
                )
        return report

    def _settle(
        self,
        rows: list[PendingRow],
        accepted_count: int,
        rejected: Iterable[object],
        replace: bool,
        report: UploadReport,
    ) -> None:
        by_id = {r.goods_id: r for r in rows}
        errors: dict[str, str] = {}
        unattributed: list[str] = []
        for rej in rejected:
            gid = getattr(rej, "goods_id", None)
            text = str(getattr(rej, "error", ""))
            if gid in by_id:
                errors[str(gid)] = text
            else:
                unattributed.append(f"{gid!r}: {text}" if gid is not None else text)
        consistent = not unattributed and accepted_count == len(rows) - len(errors)
        accepted = (
            [(r.goods_id, r.hash) for r in rows if r.goods_id not in errors] if consistent else []
        )
        self.state.record_chunk(
            accepted,
            [(gid, by_id[gid].hash, err) for gid, err in errors.items()],
            replaced=replace,
        )
        report.accepted += len(accepted)
        report.rejected += len(errors)
        for gid, err in errors.items():
            if len(report.rejections) < REJECTIONS_KEPT:
                report.rejections.append(ItemRejection(gid, by_id[gid].row, err))
        if not consistent:
            report.unconfirmed += len(rows) - len(errors)
            for text in unattributed[:REJECTIONS_KEPT]:
                report.rejections.append(ItemRejection(None, None, text))
            if not unattributed:
                report.rejections.append(
                    ItemRejection(
                        None,
                        None,
                        f"processing said {accepted_count} of {len(rows)} items were accepted"
                        f" with {len(errors)} rejected; the chunk is sent again next time",
                    )
                )
