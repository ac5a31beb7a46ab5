"""The catalogue: which discount group each goods id belongs to, and its upload.

Pricing reads the group of every cheque line, so the groups live in memory; an upload
builds a new map and swaps it in whole, so a step being priced never sees half an upload.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from stdnum import ean

from bridge.loyalty.protocol import (
    GOODS_IMPORT_CHUNK,
    ErrorCode,
    GoodsImportRequest,
    GoodsImportResponse,
    GoodsItem,
    GoodsRejection,
    encode,
)
from sandbox.answers import Outcome, bad_request, describe
from sandbox.rules import CENT, DEFAULT_GROUP, to_cents
from sandbox.store import Store


class Catalogue:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.lock:
            self._groups: dict[str, str] = {
                r["goods_id"]: r["grp"]
                for r in store.conn.execute("SELECT goods_id, grp FROM goods")
            }

    def __len__(self) -> int:
        return len(self._groups)

    def group(self, goods_id: str) -> str | None:
        """None for goods processing was never told about (priced in the default group)."""
        return self._groups.get(goods_id)

    def import_goods(self, payload: Any) -> Outcome:
        """Apply a catalogue chunk at once.

        Real processing applies uploads in the background, possibly hours later; the sandbox
        does not imitate that lag, so a test can price new goods right after uploading them.
        Items are validated one by one so a bad item is rejected alone, by name.
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("goods"), list):
            return bad_request("body must be an object with a 'goods' list")
        items = payload["goods"]
        if len(items) > GOODS_IMPORT_CHUNK:
            return bad_request(
                f"goods: {len(items)} items, at most {GOODS_IMPORT_CHUNK} per request"
            )
        valid, rejected = _sort(items)
        try:
            request = GoodsImportRequest.model_validate({**payload, "goods": valid})
        except ValidationError as exc:
            return bad_request(describe(exc))
        ok = ErrorCode.OK.value
        if request.replace and rejected and not valid:
            # a replace in which nothing survived validation must not empty the catalogue
            return Outcome(
                200,
                ok,
                encode(
                    GoodsImportResponse(
                        code=ok,
                        error_message="nothing accepted: the catalogue was not replaced",
                        rejected=rejected,
                    )
                ),
            )
        self._save(request)
        response = GoodsImportResponse(code=ok, accepted=len(valid), rejected=rejected)
        return Outcome(200, ok, encode(response))

    def _save(self, request: GoodsImportRequest) -> None:
        with self.store.transaction() as db:
            if request.replace:
                db.execute("DELETE FROM goods")
            db.executemany(
                "INSERT OR REPLACE INTO goods VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        g.goods_id,
                        g.barcode,
                        g.name,
                        g.group or DEFAULT_GROUP,
                        None if g.price is None else to_cents(g.price),
                    )
                    for g in request.goods
                ],
            )
            groups = {} if request.replace else dict(self._groups)
            groups.update({g.goods_id: g.group or DEFAULT_GROUP for g in request.goods})
            self._groups = groups


def _sort(items: list[Any]) -> tuple[list[GoodsItem], list[GoodsRejection]]:
    """The items worth storing, and each other one with the reason, named by its index."""
    valid: list[GoodsItem] = []
    rejected: list[GoodsRejection] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        gid = raw.get("goodsId") if isinstance(raw, dict) else None
        gid_text = str(gid) if gid is not None else None
        try:
            item = GoodsItem.model_validate(raw)
        except ValidationError as exc:
            rejected.append(GoodsRejection(goods_id=gid_text, error=describe(exc, f"goods[{i}]")))
            continue
        error = None
        if item.goods_id in seen:
            error = "duplicate goodsId in this upload"
        elif item.barcode is not None and not ean.is_valid(item.barcode):
            error = f"barcode {item.barcode!r} is not a valid EAN/GTIN (check digit)"
        elif item.price is not None and item.price != item.price.quantize(CENT):
            error = f"price {item.price} has more than 2 decimals"
        if error:
            rejected.append(GoodsRejection(goods_id=item.goods_id, error=f"goods[{i}]: {error}"))
            continue
        seen.add(item.goods_id)
        valid.append(item)
    return valid, rejected
