"""The POS API end to end: real uvicorn, real sandbox, real journal."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bridge.loyalty.protocol import loads
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.service.conftest import TOKEN
from tests.service.sse import SseReader

ACTIVE, INACTIVE, BLOCKED = "2775000000012", "2775000000029", "2775000000036"
MILK = {
    "goodsId": "1001",
    "barcode": "4600000000015",
    "name": "Milk 3.2% 1 l",
    "price": "89.90",
    "quantity": "2",
}
SOAP = {"goodsId": "5001", "name": "Dish soap", "price": "150.00", "quantity": 1}


def body(response: httpx.Response) -> Any:
    return loads(response.content)


def sell(api: httpx.Client, card: str | None, pay: str | None = None) -> dict[str, Any]:
    r = api.post("/v1/cheques", json={"card": card, "lines": [MILK, SOAP]})
    assert r.status_code == 201, r.text
    cid = body(r)["id"]
    calc = body(api.post(f"/v1/cheques/{cid}/calculate"))
    if pay:
        r = api.post(f"/v1/cheques/{cid}/payment", json={"amount": pay})
        assert r.status_code == 200, r.text
    r = api.post(f"/v1/cheques/{cid}/confirm")
    assert r.status_code == 200, r.text
    return {"calc": calc, **body(r)}


def test_purchase_with_redemption(api: httpx.Client, sandbox_server: SandboxServer) -> None:
    out = sell(api, ACTIVE, pay="50")
    assert out["calc"]["total"] == Decimal("329.80")
    assert out["calc"]["availableBonuses"] == Decimal("164.90")
    assert out["calc"]["balanceBefore"] == Decimal("500.00")
    assert out["state"] == "confirmed" and out["redeemed"] == Decimal("50.00")
    assert out["accrued"] > 0
    assert out["balanceAfter"] == Decimal("450.00") + out["accrued"]
    assert out["card"] == "27*******0012"
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["balance"] == out["balanceAfter"]


def test_blocked_card_sells_without_discount(api: httpx.Client) -> None:
    out = sell(api, BLOCKED)
    assert out["cardBlocked"] and out["cashierMessage"] == "Card is blocked"
    assert out["calc"]["discount"] == 0 and out["state"] == "confirmed"


def test_not_activated_card_accrues_but_cannot_redeem(api: httpx.Client) -> None:
    cid = body(api.post("/v1/cheques", json={"card": INACTIVE, "lines": [MILK]}))["id"]
    api.post(f"/v1/cheques/{cid}/calculate")
    r = api.post(f"/v1/cheques/{cid}/payment", json={"amount": "10"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert body(r)["code"] == "CardNotActivated"
    done = body(api.post(f"/v1/cheques/{cid}/confirm"))
    assert done["accrued"] > 0 and done["redeemed"] == 0


def test_offline_purchase_then_replay(
    api: httpx.Client, service: Service, sandbox_server: SandboxServer
) -> None:
    sandbox_server.stop()
    cid = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK]}))["id"]
    calc = body(api.post(f"/v1/cheques/{cid}/calculate"))
    assert calc["offline"] and calc["discount"] == 0 and calc["availableBonuses"] == 0
    r = api.post(f"/v1/cheques/{cid}/payment", json={"amount": "10"})
    assert (
        r.status_code == 409 and body(r)["cashierMessage"] == "Bonuses cannot be redeemed offline"
    )
    done = body(api.post(f"/v1/cheques/{cid}/confirm"))
    assert done["queued"] and done["accrued"] is None
    status = body(api.get("/v1/status"))
    assert status["connectivity"] == "offline" and status["journal"]["pending"] == 2
    assert status["passthrough"] is None  # no [[passthrough]] entries on this register
    events = SseReader(f"{service.url}/v1/events", TOKEN)
    sandbox_server.start()
    try:
        while events.next("connectivity", timeout=30)["state"] != "online":
            pass
    finally:
        events.close()
    assert body(api.get("/v1/status"))["journal"]["pending"] == 0
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["accrued"] > 0


def test_refund_whole_and_partial(api: httpx.Client, sandbox_server: SandboxServer) -> None:
    out = sell(api, ACTIVE)
    r = api.post(
        f"/v1/cheques/{out['id']}/refund", json={"lines": [{"position": 2, "quantity": 1}]}
    )
    assert r.status_code == 200, r.text
    assert body(r)["amount"] == Decimal("150.00")
    r = api.post(
        f"/v1/cheques/{out['id']}/refund", json={"lines": [{"position": 1, "quantity": 2}]}
    )
    assert r.status_code == 200, r.text
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["balance"] == Decimal("500.00")


def test_balance_and_cancel(api: httpx.Client, sandbox_server: SandboxServer) -> None:
    assert body(api.get(f"/v1/cards/{ACTIVE}/balance"))["balance"] == Decimal("500.00")
    cid = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK, SOAP]}))["id"]
    api.post(f"/v1/cheques/{cid}/calculate")
    api.post(f"/v1/cheques/{cid}/payment", json={"amount": "30"})
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["held"] == Decimal("30.00")
    assert body(api.post(f"/v1/cheques/{cid}/cancel"))["state"] == "cancelled"
    assert admin(sandbox_server, f"ledger/{ACTIVE}")["held"] == Decimal("0.00")
    r = api.post(f"/v1/cheques/{cid}/confirm")
    assert r.status_code == 409 and body(r)["code"] == "cheque_closed"


def test_lines_and_card_can_change_before_redemption(api: httpx.Client) -> None:
    cid = body(api.post("/v1/cheques", json={}))["id"]
    r = api.post(f"/v1/cheques/{cid}/calculate")
    assert r.status_code == 422 and body(r)["code"] == "empty_cheque"
    api.post(f"/v1/cheques/{cid}/lines", json={"lines": [MILK]})
    api.post(f"/v1/cheques/{cid}/lines", json={"lines": [SOAP]})
    assert len(body(api.get(f"/v1/cheques/{cid}"))["lines"]) == 2
    api.post(f"/v1/cheques/{cid}/lines", json={"lines": [SOAP], "replace": True})
    assert body(api.get(f"/v1/cheques/{cid}"))["total"] == Decimal("150.00")
    assert (
        body(api.put(f"/v1/cheques/{cid}/card", json={"card": ACTIVE}))["card"] == "27*******0012"
    )


@pytest.mark.parametrize("headers", [{}, {"X-Posbridge-Token": "wrong"}, {"X-Posbridge-Token": ""}])
def test_missing_or_wrong_token_is_401(service: Service, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/v1/status"), ("POST", "/v1/cheques"), ("GET", "/v1/events")]:
        r = httpx.request(method, service.url + path, headers=headers, json={}, timeout=10)
        assert r.status_code == 401 and body(r)["code"] == "unauthorized"
        assert TOKEN not in r.text


def test_api_listens_on_loopback_only(service: Service) -> None:
    import socket

    port = service.config.api.port
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for addr in addrs - {"127.0.0.1"}:
        with pytest.raises(OSError):
            socket.create_connection((addr, port), timeout=1).close()
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_malformed_requests_are_problems(api: httpx.Client) -> None:
    r = api.post("/v1/cheques", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and body(r)["code"] == "invalid_request"
    r = api.post("/v1/cheques", json={"lines": [{**MILK, "price": "-1"}]})
    assert r.status_code == 422 and "price" in body(r)["detail"]
    r = api.post(
        "/v1/cheques",
        content=b'{"lines": [{"goodsId": "1", "name": "x", "price": 1e400}]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    r = api.get("/v1/cheques/nope")
    assert r.status_code == 404 and body(r)["code"] == "cheque_not_found"


def test_fifty_concurrent_api_clients_never_overlap_at_processing(
    service: Service, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_latency(0.002)
    barrier = threading.Barrier(50)

    def one(i: int) -> str:
        with httpx.Client(
            base_url=service.url, headers={"X-Posbridge-Token": TOKEN}, timeout=60
        ) as c:
            barrier.wait()
            return str(sell(c, ACTIVE if i % 2 else None)["state"])

    with ThreadPoolExecutor(50) as pool:
        states = list(pool.map(one, range(50)))
    assert states == ["confirmed"] * 50
    status = admin(sandbox_server, "status")
    assert status["overlaps"] == 0 and status["duplicates"] == 0


def test_openapi_document(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    assert "/v1/cheques/{cheque_id}/confirm" in doc["paths"]
    assert doc["info"]["title"] == "posbridge POS API"


def test_metrics(api: httpx.Client, service: Service) -> None:
    sell(api, ACTIVE)
    api.get(f"/v1/cards/{BLOCKED}/balance")
    text = api.get("/metrics").text
    assert 'posbridge_processing_requests_total{operation="confirm",outcome="Ok"} 1.0' in text
    assert (
        'posbridge_processing_requests_total{operation="balance",outcome="CardBlocked"} 1.0' in text
    )
    assert (
        'posbridge_processing_request_seconds_bucket{le="10.0",operation="calculate"} 1.0' in text
    )
    assert 'posbridge_journal_entries{status="done"} 2.0' in text
    assert 'posbridge_connectivity{state="online"} 1.0' in text
    bearer = httpx.get(f"{service.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200
    assert httpx.get(f"{service.url}/metrics").status_code == 401


def test_a_closed_cheque_keeps_what_receipts_and_refunds_need_and_no_more(
    service: Service, api: httpx.Client
) -> None:
    """The register keeps its recent cheques: once a purchase is over, its steps'
    requests and answers are let go (they were ~2.4 MB of the service's memory)."""
    done = sell(api, ACTIVE)
    cid = done["id"]
    cancelled = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK]}))["id"]
    api.post(f"/v1/cheques/{cancelled}/calculate")
    api.post(f"/v1/cheques/{cancelled}/cancel")
    for kept in (cid, cancelled):
        purchase = service.register.book.get(kept).purchase
        assert purchase is not None and not purchase.last
        assert all(purchase.step_request(k) is None for k in ("discount", "confirm", "cancel"))
    receipt = api.post("/v1/receipts/loyalty", json={"chequeId": cid})
    text = "\n".join(body(receipt)["lines"])  # Russian receipt: decimal comma
    assert receipt.status_code == 200
    assert str(done["accrued"]).replace(".", ",") in text
    assert str(done["balanceAfter"]).replace(".", ",") in text
    refund = api.post(f"/v1/cheques/{cid}/refund")
    assert refund.status_code == 200, refund.text
    assert body(api.get(f"/v1/cheques/{cid}"))["purchaseId"] == done["purchaseId"]
