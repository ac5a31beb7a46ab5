"""Refunds are counted per cheque and per position, online and offline (issue 11,
section 3): asking for more than is left is refused at once and never queued."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from bridge.loyalty.journal import EntryStatus
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.service.cheque_helpers import ACTIVE, MILK, SOAP, body, running, sell

KETTLE = {"goodsId": "7001", "name": "Kettle", "price": "100.00", "quantity": 1}


def refund_entries(service: Service) -> list[str]:
    return [e.status for e in service.register.offline.journal.entries() if e.op == "refund"]


def test_offline_the_same_cheque_is_refunded_once_not_three_times(
    service: Service, api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    done = sell(api, ACTIVE, [KETTLE])
    assert done["total"] == Decimal("100.00")
    sandbox_server.stop()
    first = api.post(f"/v1/cheques/{done['id']}/refund")
    assert first.status_code == 200 and body(first)["queued"], first.text
    assert body(first)["amount"] == Decimal("100.00")
    for _ in range(2):
        again = api.post(f"/v1/cheques/{done['id']}/refund")
        assert again.status_code == 409, again.text
        assert again.headers["content-type"] == "application/problem+json"
        assert body(again)["code"] == "over_refund"
    assert refund_entries(service) == [EntryStatus.PENDING]
    sandbox_server.start()
    report = service.register.offline.drain()
    assert report.stopped is None and not report.rejected
    assert refund_entries(service) == ["done"]
    assert admin(sandbox_server, f"purchases/{done['purchaseId']}")["status"] == "refunded"


def test_partial_refunds_add_up_per_position(
    api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    done = sell(api, ACTIVE, [MILK, SOAP])  # milk: 2 x 89.90, soap: 1 x 150.00
    cid = done["id"]
    one = {"lines": [{"position": 1, "quantity": 1}]}
    assert body(api.post(f"/v1/cheques/{cid}/refund", json=one))["amount"] == Decimal("89.90")
    assert body(api.post(f"/v1/cheques/{cid}/refund", json=one))["amount"] == Decimal("89.90")
    r = api.post(f"/v1/cheques/{cid}/refund", json=one)
    assert r.status_code == 409 and body(r)["code"] == "over_refund"
    assert "position" in body(r)["detail"] or "line 1" in body(r)["detail"]
    rest = api.post(f"/v1/cheques/{cid}/refund")  # everything left: the soap only
    assert rest.status_code == 200 and body(rest)["amount"] == Decimal("150.00"), rest.text
    r = api.post(f"/v1/cheques/{cid}/refund")
    assert r.status_code == 409 and body(r)["code"] == "over_refund"
    assert admin(sandbox_server, f"purchases/{done['purchaseId']}")["status"] == "refunded"


def test_one_request_cannot_refund_a_position_twice_over(api: httpx.Client) -> None:
    cid = sell(api, ACTIVE, [SOAP])["id"]
    twice = {"lines": [{"position": 1, "quantity": 1}, {"position": 1, "quantity": 1}]}
    r = api.post(f"/v1/cheques/{cid}/refund", json=twice)
    assert r.status_code == 409 and body(r)["code"] == "over_refund"
    r = api.post(f"/v1/cheques/{cid}/refund", json={"lines": [{"position": 2, "quantity": 1}]})
    assert r.status_code == 422 and body(r)["code"] == "bad_lines"
    assert api.post(f"/v1/cheques/{cid}/refund").status_code == 200


def test_a_refund_processing_refuses_is_not_counted(
    service: Service, api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    done = sell(api, ACTIVE, [KETTLE])
    book = service.register.book
    cheque = book.get(done["id"])
    assert cheque.purchase is not None
    real = cheque.purchase.purchase_id
    cheque.purchase.purchase_id = "unknown-purchase"  # processing will refuse this one
    r = api.post(f"/v1/cheques/{done['id']}/refund")
    assert r.status_code == 422 and body(r)["code"] == "PurchaseNotFound", r.text
    assert cheque.refunds == []
    cheque.purchase.purchase_id = real
    assert api.post(f"/v1/cheques/{done['id']}/refund").status_code == 200


def test_the_count_survives_a_restart(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    with running(tmp_path, sandbox_server) as (_, api):
        cid = sell(api, ACTIVE, [MILK])["id"]
        sandbox_server.stop()
        r = api.post(f"/v1/cheques/{cid}/refund", json={"lines": [{"position": 1, "quantity": 1}]})
        assert r.status_code == 200 and body(r)["queued"]
    sandbox_server.start()
    with running(tmp_path, sandbox_server) as (svc, api):
        r = api.post(f"/v1/cheques/{cid}/refund", json={"lines": [{"position": 1, "quantity": 2}]})
        assert r.status_code == 409 and body(r)["code"] == "over_refund"
        r = api.post(f"/v1/cheques/{cid}/refund")
        assert r.status_code == 200 and body(r)["amount"] == Decimal("89.90"), r.text
        report = svc.register.offline.drain()
        assert report.stopped is None and not report.rejected
