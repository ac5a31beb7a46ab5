"""Changing the card on a cheque (issue 11, section 2): another card starts the loyalty
part afresh, and bonuses held for the previous card are never moved or lost silently."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from bridge.loyalty.protocol import mask_card
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.service.cheque_helpers import (
    ACTIVE,
    BLOCKED,
    MILK,
    SOAP,
    ZERO,
    body,
    held,
    open_and_pay,
)


def test_a_card_with_no_bonuses_after_one_with_500_shows_its_own_balance(api: httpx.Client) -> None:
    cid = body(api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK, SOAP]}))["id"]
    assert body(api.post(f"/v1/cheques/{cid}/calculate"))["balanceBefore"] == Decimal("500.00")
    changed = body(api.put(f"/v1/cheques/{cid}/card", json={"card": ZERO}))
    assert changed["card"] == mask_card(ZERO) and changed["state"] == "open"
    assert changed["balanceBefore"] is None and changed["availableBonuses"] == 0
    assert changed["purchaseId"] is None
    calc = body(api.post(f"/v1/cheques/{cid}/calculate"))
    assert calc["balanceBefore"] == Decimal("0.00") and calc["availableBonuses"] == 0
    done = body(api.post(f"/v1/cheques/{cid}/confirm"))
    assert done["state"] == "confirmed" and done["accrued"] > 0
    lines = body(api.post("/v1/receipts/loyalty", json={"chequeId": cid}))["lines"]
    text = "\n".join(lines)
    assert "500,00" not in text, text
    assert "0067" in text and "0012" not in text
    assert any("Баланс до покупки" in ln and ln.rstrip().endswith("0,00") for ln in lines), text


def test_a_valid_card_after_a_blocked_one_gets_its_discount_and_can_pay(
    api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    cid = body(api.post("/v1/cheques", json={"card": BLOCKED, "lines": [MILK, SOAP]}))["id"]
    calc = body(api.post(f"/v1/cheques/{cid}/calculate"))
    assert calc["cardBlocked"] and calc["cashierMessage"] == "Card is blocked"
    changed = body(api.put(f"/v1/cheques/{cid}/card", json={"card": ACTIVE}))
    assert not changed["cardBlocked"] and changed["cashierMessage"] is None
    calc = body(api.post(f"/v1/cheques/{cid}/calculate"))
    assert not calc["cardBlocked"] and calc["availableBonuses"] == Decimal("164.90")
    assert calc["balanceBefore"] == Decimal("500.00")
    r = api.post(f"/v1/cheques/{cid}/payment", json={"amount": "20"})
    assert r.status_code == 200, r.text
    done = body(api.post(f"/v1/cheques/{cid}/confirm"))
    assert done["redeemed"] == Decimal("20.00") and not done["cardBlocked"]
    assert held(sandbox_server) == Decimal("0.00")


def test_held_bonuses_block_a_card_change_until_released(
    api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    cid = open_and_pay(api, pay="50")
    r = api.put(f"/v1/cheques/{cid}/card", json={"card": ZERO})
    assert r.status_code == 409 and body(r)["code"] == "redemption_held"
    assert "2775000000012" not in r.text  # the message names the card masked
    kept = body(api.get(f"/v1/cheques/{cid}"))
    assert kept["card"] == mask_card(ACTIVE) and kept["redeemed"] == Decimal("50.00")
    assert held(sandbox_server) == Decimal("50.00")
    released = api.delete(f"/v1/cheques/{cid}/payments")
    assert released.status_code == 200, released.text
    assert body(released)["redeemed"] == 0 and body(released)["state"] == "open"
    assert held(sandbox_server) == Decimal("0.00")
    assert body(api.put(f"/v1/cheques/{cid}/card", json={"card": ZERO}))["card"] == mask_card(ZERO)
    api.post(f"/v1/cheques/{cid}/calculate")
    done = body(api.post(f"/v1/cheques/{cid}/confirm"))
    assert done["state"] == "confirmed" and done["redeemed"] == 0
    assert held(sandbox_server) == Decimal("0.00")


def test_the_same_card_again_keeps_the_calculation(api: httpx.Client) -> None:
    cid = open_and_pay(api, pay="10")
    again = api.put(f"/v1/cheques/{cid}/card", json={"card": ACTIVE})
    assert again.status_code == 200
    assert body(again)["redeemed"] == Decimal("10.00") and body(again)["state"] == "calculated"


def test_a_swiped_card_over_held_bonuses_is_rejected_not_attached(
    service: Service, api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    cid = open_and_pay(api, pay="30")
    assert service.register.card_presented(ZERO, "msr") is None
    assert body(api.get(f"/v1/cheques/{cid}"))["card"] == mask_card(ACTIVE)
    assert held(sandbox_server) == Decimal("30.00")


def test_released_bonuses_are_given_back_offline_through_the_journal(
    service: Service, api: httpx.Client, sandbox_server: SandboxServer
) -> None:
    cid = open_and_pay(api, pay="40")
    sandbox_server.stop()
    released = api.delete(f"/v1/cheques/{cid}/payments")
    assert released.status_code == 200 and body(released)["redeemed"] == 0
    assert body(api.put(f"/v1/cheques/{cid}/card", json={"card": ZERO}))["card"] == mask_card(ZERO)
    sandbox_server.start()
    report = service.register.offline.drain()
    assert report.stopped is None and not report.rejected
    assert held(sandbox_server) == Decimal("0.00")


def test_the_rule_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "pos-api.md").read_text()
    assert "redemption_held" in doc and "DELETE /v1/cheques/{id}/payments" in doc
