"""Helpers of the cheque tests: a service with its own cheque settings, restartable on the
same files, and the sandbox's held total for a card."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bridge.config import ChequeSettings, Config
from bridge.loyalty.protocol import loads
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.service.conftest import TOKEN, service_config

ACTIVE, INACTIVE, BLOCKED = "2775000000012", "2775000000029", "2775000000036"
HUNDRED, ZERO = "2775000000050", "2775000000067"  # active cards: balances 100.00 and 0
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


def config(tmp_path: Path, sandbox: SandboxServer, **cheques: Any) -> Config:
    cfg = service_config(tmp_path, sandbox.url)
    if cheques:
        cfg = cfg.model_copy(update={"cheques": ChequeSettings(**cheques)})
    return cfg


@contextmanager
def running(
    tmp_path: Path, sandbox: SandboxServer, **cheques: Any
) -> Iterator[tuple[Service, httpx.Client]]:
    """A service on the test's files (a second one after the first stopped is a restart)."""
    with (
        Service(config(tmp_path, sandbox, **cheques), TOKEN) as svc,
        httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30) as api,
    ):
        yield svc, api


def held(sandbox: SandboxServer, card: str = ACTIVE) -> Decimal:
    return Decimal(admin(sandbox, f"ledger/{card}")["held"])


def open_and_pay(
    api: httpx.Client,
    card: str = ACTIVE,
    pay: str = "50",
    lines: list[dict[str, Any]] | None = None,
) -> str:
    """A calculated cheque with `pay` bonuses held at processing; its id."""
    r = api.post("/v1/cheques", json={"card": card, "lines": lines or [MILK, SOAP]})
    assert r.status_code == 201, r.text
    cid = str(body(r)["id"])
    r = api.post(f"/v1/cheques/{cid}/calculate")
    assert r.status_code == 200, r.text
    r = api.post(f"/v1/cheques/{cid}/payment", json={"amount": pay})
    assert r.status_code == 200, r.text
    return cid


def sell(
    api: httpx.Client, card: str | None, lines: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    r = api.post("/v1/cheques", json={"card": card, "lines": lines or [MILK, SOAP]})
    assert r.status_code == 201, r.text
    cid = body(r)["id"]
    assert api.post(f"/v1/cheques/{cid}/calculate").status_code == 200
    r = api.post(f"/v1/cheques/{cid}/confirm")
    assert r.status_code == 200, r.text
    return dict(body(r))
