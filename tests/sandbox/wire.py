"""Raw httpx helpers for the sandbox tests: request bodies by hand, answers parsed by stdlib json.

Deliberately not the bridge's loyalty client: the sandbox is tested on its own wire.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import httpx

from bridge.loyalty.protocol import dumps
from sandbox.server import SandboxServer

CARD = "2775000000012"  # active, 500.00
CARD_INACTIVE = "2775000000029"
CARD_BLOCKED = "2775000000036"
CARD_EXPIRED = "2775000000043"
CARD_100 = "2775000000050"  # active, 100.00
CARD_EMPTY = "2775000000067"  # active, 0
PHONE = "+79990000001"
NOON = "2026-11-29T14:00:00"  # no timed offer is active


def D(text: str) -> Decimal:
    return Decimal(text)


def line(position: int, goods_id: str, amount: str, quantity: str = "1") -> dict[str, Any]:
    amt = Decimal(amount)
    qty = Decimal(quantity)
    return {
        "position": position,
        "goodsId": goods_id,
        "name": f"goods {goods_id}",
        "price": (amt / qty).quantize(Decimal("0.01")),
        "quantity": qty,
        "amount": amt,
    }


def parse(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


class Api:
    """One register's view of the sandbox."""

    def __init__(
        self, server: SandboxServer, login: str = "register-1", password: str = "secret-1"
    ) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, auth=(login, password), timeout=10)
        self.admin = httpx.Client(base_url=server.url.removesuffix("/publicapi"), timeout=10)

    def close(self) -> None:
        self.http.close()
        self.admin.close()

    def raw(self, path: str, body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else dumps(body)
        return self.http.post(path, content=content, headers={"Content-Type": "application/json"})

    def call(
        self,
        path: str,
        *,
        card: str | None = CARD,
        date: str = NOON,
        op_id: str | None = None,
        id_type: str = "CardNumber",
        **fields: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "operationId": op_id or uuid.uuid4().hex,
            "operationDate": date,
        }
        if card is not None:
            body["identifier"] = {"type": id_type, "value": card}
        body.update({k: v for k, v in fields.items() if v is not None})
        response = self.raw(path, body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = parse(response)
        return answer

    @staticmethod
    def cheque(lines: list[dict[str, Any]], date: str = NOON) -> dict[str, Any]:
        return {"number": "C-1", "date": date, "lines": lines}

    # one method per contract operation
    def balance(self, card: str | None = CARD, **kw: Any) -> dict[str, Any]:
        return self.call("/v1.2/Processing/Balance", card=card, **kw)

    def calculate(self, pid: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self.call(
            f"/v1.2/Processing/Purchases/{pid}/Calculate", cheque=self.cheque(lines), **kw
        )

    def available(self, pid: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self.call(
            f"/v1.2/Processing/Purchases/{pid}/Bonus/Available", cheque=self.cheque(lines), **kw
        )

    def payment(
        self, pid: str, lines: list[dict[str, Any]], amount: str, **kw: Any
    ) -> dict[str, Any]:
        return self.call(
            f"/v1.2/Processing/Purchases/{pid}/Bonus/Payment",
            cheque=self.cheque(lines),
            amount=Decimal(amount),
            **kw,
        )

    def discount(self, pid: str, lines: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self.call(f"/v1.2/Processing/Purchases/{pid}/Bonus", cheque=self.cheque(lines), **kw)

    def confirm(self, pid: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("card", None)
        return self.call(f"/v1.2/Processing/Purchases/{pid}/Confirm", **kw)

    def cancel(self, pid: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("card", None)
        return self.call(f"/v1.2/Processing/Purchases/{pid}/Cancel", **kw)

    def cancel_operation(self, pid: str, payment_op: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("card", None)
        return self.call(f"/v1.2/Processing/Purchases/{pid}/Operations/{payment_op}/Cancel", **kw)

    def refund(
        self, pid: str, of: str | None, lines: list[dict[str, Any]], **kw: Any
    ) -> dict[str, Any]:
        kw.setdefault("card", None)
        return self.call(
            f"/v1.2/Processing/Purchases/{pid}/Refund",
            cheque=self.cheque(lines),
            refundPurchaseId=of,
            **kw,
        )

    def sale(
        self, pid: str, lines: list[dict[str, Any]], pay: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        """calculate -> payment (if any) -> discount -> confirm; returns the discount answer."""
        assert self.calculate(pid, lines, **kw)["code"] == "Ok"
        if pay is not None:
            assert self.payment(pid, lines, pay, **kw)["code"] == "Ok"
        answer = self.discount(pid, lines, **kw)
        assert answer["code"] == "Ok", answer
        assert self.confirm(pid)["code"] == "Ok"
        return answer

    # admin views
    def ledger(self, card: str = CARD) -> dict[str, Any]:
        response = self.admin.get(f"/sandbox/ledger/{card}")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = parse(response)
        return answer

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = parse(self.admin.get("/sandbox/status"))
        return answer

    def purchase(self, pid: str) -> dict[str, Any]:
        response = self.admin.get(f"/sandbox/purchases/{pid}")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = parse(response)
        return answer
