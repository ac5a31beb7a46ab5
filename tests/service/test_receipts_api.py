"""Loyalty receipts through the POS API: text and ESC/POS for the POS, or our printer."""

from __future__ import annotations

import base64
import os
import select
from collections.abc import Callable

import httpx

from bridge.loyalty.protocol import loads
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.drivers.pty_helpers import Pty
from tests.service.conftest import TOKEN
from tests.service.test_api import MILK, SOAP, sell


def client(svc: Service) -> httpx.Client:
    return httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30)


def receipt(api: httpx.Client, cheque_id: str) -> tuple[list[str], bytes]:
    r = api.post("/v1/receipts/loyalty", json={"chequeId": cheque_id})
    assert r.status_code == 200, r.text
    data = loads(r.content)
    return data["lines"], base64.b64decode(data["escposBase64"])


def test_normal_receipt_in_russian(make_service: Callable[..., Service]) -> None:
    api = client(make_service(language="ru", columns=32))
    out = sell(api, "2775000000012", pay="50")
    lines, escpos = receipt(api, out["id"])
    text = "\n".join(lines)
    assert all(len(line) <= 32 for line in lines)
    assert "27*******0012" in text and "2775000000012" not in text
    assert "50,00" in text or "50.00" in text
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in text
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ".encode("cp866") in escpos


def test_blocked_and_offline_receipts_in_english(
    make_service: Callable[..., Service], sandbox_server: SandboxServer
) -> None:
    api = client(make_service(language="en", columns=48))
    blocked = sell(api, "2775000000036")
    assert "Card is blocked" in "\n".join(receipt(api, blocked["id"])[0])
    sandbox_server.stop()
    offline = sell(api, "2775000000012")
    text = " ".join(receipt(api, offline["id"])[0])
    assert "once the connection" in " ".join(text.split())


def test_print_on_the_configured_printer(make_service: Callable[..., Service]) -> None:
    with Pty() as printer:
        svc = make_service(
            printer="receipt",
            language="ru",
            devices=[
                {
                    "name": "receipt",
                    "kind": "printer",
                    "connection": "serial",
                    "port": printer.path,
                    "profile": "TM-T88III",
                }
            ],
        )
        api = client(svc)
        out = sell(api, "2775000000012")
        r = api.post("/v1/receipts/print", json={"chequeId": out["id"]})
        assert r.status_code == 202, r.text
        job = loads(r.content)["jobId"]
        assert job
        data = b""
        while b"\x1dV" not in data:  # until the cut arrives
            assert select.select([printer.master], [], [], 10)[0], "printer got no job"
            data += os.read(printer.master, 65536)
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ".encode("cp866") in data
    assert b"27*******0012" in data


def test_print_without_a_printer_is_a_problem(api: httpx.Client) -> None:
    cid = loads(api.post("/v1/cheques", json={"lines": [MILK, SOAP]}).content)["id"]
    r = api.post("/v1/receipts/print", json={"chequeId": cid})
    assert r.status_code == 409 and loads(r.content)["code"] == "no_printer"
