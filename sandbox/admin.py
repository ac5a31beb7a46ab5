"""Read-only views for the operator and for tests: a card's ledger, a purchase, the inventory.

They answer what the contract never says out loud (held amounts, partial refunds line by
line), so a test can check processing's side of a step, not only what the register was told.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sandbox import ledger
from sandbox.auth import Registers
from sandbox.goods import Catalogue
from sandbox.rules import from_cents
from sandbox.store import Store


class Views:
    def __init__(self, store: Store, registers: Registers, catalogue: Catalogue) -> None:
        self.store = store
        self.registers = registers
        self.catalogue = catalogue

    def ledger(self, card: str) -> dict[str, Any] | None:
        with self.store.lock:
            db = self.store.conn
            if db.execute("SELECT 1 FROM cards WHERE number=?", (card,)).fetchone() is None:
                return None
            rows = db.execute("SELECT * FROM entries WHERE card=? ORDER BY id", (card,)).fetchall()
        sums: dict[tuple[str, str], int] = {}
        for r in rows:
            sums[(r["kind"], r["status"])] = sums.get((r["kind"], r["status"]), 0) + r["cents"]

        def total(kind: str, status: str = "final") -> Decimal:
            return from_cents(abs(sums.get((kind, status), 0)))

        balance = sum(c for (k, s), c in sums.items() if s == "final" or (s == "held" and c < 0))
        return {
            "card": card,
            "balance": from_cents(balance),
            "opening": total("opening"),
            "accrued": total("accrual"),
            "redeemed": total("redemption"),
            "refunded": total("refund_redemption"),
            "reversed": total("refund_accrual"),
            "held": total("redemption", "held"),
            "pendingAccrual": total("accrual", "held"),
            "entries": [
                {
                    "purchaseId": r["purchase_id"],
                    "operationId": r["operation_id"],
                    "kind": r["kind"],
                    "amount": from_cents(r["cents"]),
                    "status": r["status"],
                    "operationDate": r["operation_date"],
                }
                for r in rows
            ],
        }

    def inventory(self) -> dict[str, Any]:
        """Registers and cards, for the operator starting the sandbox by hand."""
        with self.store.lock:
            db = self.store.conn
            cards = [
                {
                    "number": r["number"],
                    "state": r["state"],
                    "balance": ledger.balance(db, r["number"]),
                    "phones": [
                        "+" + p["phone"]
                        for p in db.execute("SELECT phone FROM phones WHERE card=?", (r["number"],))
                    ],
                }
                for r in db.execute("SELECT number, state FROM cards ORDER BY number").fetchall()
            ]
        return {
            "registers": self.registers.listing(),
            "cards": cards,
            "goods": len(self.catalogue),
        }

    def purchase(self, purchase_id: str) -> dict[str, Any] | None:
        with self.store.lock:
            db = self.store.conn
            row = db.execute(
                "SELECT * FROM purchases WHERE purchase_id=?", (purchase_id,)
            ).fetchone()
            if row is None:
                return None
            entries = db.execute(
                "SELECT kind, status, SUM(cents) AS cents FROM entries WHERE purchase_id=? "
                "GROUP BY kind, status",
                (purchase_id,),
            ).fetchall()
            refunds = [
                r["purchase_id"]
                for r in db.execute(
                    "SELECT purchase_id FROM purchases WHERE refund_of=? ORDER BY rowid",
                    (purchase_id,),
                )
            ]
        amounts = {(e["kind"], e["status"]): from_cents(abs(e["cents"])) for e in entries}
        zero = Decimal("0.00")
        return {
            "purchaseId": row["purchase_id"],
            "register": row["register"],
            "card": row["card"],
            "kind": row["kind"],
            "status": row["status"],
            "refundOf": row["refund_of"],
            "refunds": refunds,
            "operationDate": row["operation_date"],
            "totalAmount": from_cents(row["total_cents"]),
            "totalDiscount": from_cents(row["discount_cents"]),
            "heldRedemption": amounts.get(("redemption", "held"), zero),
            "heldAccrual": amounts.get(("accrual", "held"), zero),
            "redeemed": amounts.get(("redemption", "final"), zero),
            "accrued": amounts.get(("accrual", "final"), zero),
            "lines": [_line_view(x) for x in json.loads(row["lines"])],
        }


def _line_view(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored cheque line with cents and quantity strings as JSON numbers."""
    return {
        k: from_cents(v)
        if isinstance(v, int) and k != "position"
        else Decimal(v)
        if k in ("quantity", "refundedQuantity")
        else v
        for k, v in stored.items()
    }
