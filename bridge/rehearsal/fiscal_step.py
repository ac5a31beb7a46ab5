"""The demo's fiscal step: a sale printed on an emulated Shtrih-M registrar as a fiscal
receipt, with the loyalty lines inside it, through the POS API.

A register of its own beside the demo's (same processing sandbox, own files), because
its registrar is the emulator this step starts: the POS rings up a sale with a card,
confirms it, asks for the fiscal receipt, and the step reads the emulator's paper log
to check that the loyalty block is on the receipt, before the total, exactly once -
also after the POS retries the print.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx

from bridge.config import parse
from bridge.loyalty.protocol import loads
from bridge.server import Service
from sandbox.registrar.emulator import RegistrarEmulator

CARD = "2775000000050"  # an active sandbox card with a balance
MILK = {"goodsId": "1001", "name": "Молоко 3,2% 1 л", "price": "89.90", "quantity": "2"}
KEFIR = {"goodsId": "1002", "name": "Кефир 1% 0,9 л", "price": "74.50"}


class Steps(Protocol):
    """What the step needs of the demo's shift: where receipts go, the language, and the
    shift's own way to say and check a step."""

    @property
    def out(self) -> Path: ...

    @property
    def language(self) -> str: ...

    @property
    def say(self) -> Callable[[str], None]: ...

    def check(self, ok: bool, what: str) -> bool: ...


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fiscal_sale(steps: Steps, sandbox_url: str, work: Path, number: int = 9) -> None:
    """Start the emulator, print one sale as a fiscal receipt, check the paper log."""
    work = work / "fiscal"
    with RegistrarEmulator() as emulator:
        port = emulator.start_tcp()
        steps.say(f"{number}. fiscal registrar (Shtrih-M emulator) on tcp 127.0.0.1:{port}")
        token = secrets.token_hex(16)
        config = parse(
            {
                "processing": {
                    "url": sandbox_url,
                    "login": "register-1",
                    "password": "secret-1",
                    "lock_file": str(work / "processing.lock"),
                    "read_timeout": 5.0,
                    "register_id": "demo-pos-2",
                },
                "journal": {"path": str(work / "journal.sqlite")},
                "api": {"port": _free_port(), "token": token},
                "receipt": {"language": steps.language, "registrar": "kkt"},
                "devices": [
                    {
                        "name": "kkt",
                        "kind": "registrar",
                        "connection": "tcp",
                        "host": "127.0.0.1",
                        "tcp_port": port,
                    }
                ],
            }
        )
        with (
            Service(config, token) as service,
            httpx.Client(
                base_url=service.url, headers={"X-Posbridge-Token": token}, timeout=60
            ) as api,
        ):
            _sale(steps, api, emulator)


def _call(api: httpx.Client, path: str, body: Any = None) -> Any:
    r = api.post(path, json=body)
    data = loads(r.content)
    if r.status_code >= 400:
        raise RuntimeError(f"POST {path}: {r.status_code} {data}")
    return data


def _sale(steps: Steps, api: httpx.Client, emulator: RegistrarEmulator) -> None:
    cheque = _call(api, "/v1/cheques", {"card": CARD, "lines": [MILK, KEFIR]})
    _call(api, f"/v1/cheques/{cheque['id']}/calculate")
    done = _call(api, f"/v1/cheques/{cheque['id']}/confirm")
    to_pay = Decimal(str(done["total"])) - Decimal(str(done["discount"]))
    body = {
        "payments": [{"kind": "electronic", "amount": str(to_pay)}],
        "lines": [{"position": 1, "tax": "vat10"}, {"position": 2, "tax": "vat20"}],
    }
    fiscal = _call(api, f"/v1/cheques/{cheque['id']}/fiscal", body)
    steps.check(
        fiscal["state"] == "closed" and str(fiscal["fiscalSign"]).isdigit(),
        f"fiscal receipt closed: FD {fiscal['documentNumber']}, FP {fiscal['fiscalSign']}",
    )
    paper = emulator.paper_text()
    (steps.out / "fiscal-receipt.txt").write_text(paper + "\n", encoding="utf-8")
    title = "ПРОГРАММА ЛОЯЛЬНОСТИ" if steps.language == "ru" else "LOYALTY PROGRAM"
    total = paper.rfind("ИТОГ")
    steps.check(
        0 <= paper.find(title) < total and all(line in paper for line in fiscal["lines"]),
        f"paper log: the loyalty block ({len(fiscal['lines'])} lines) inside, before the total",
    )
    documents = emulator.documents
    document = documents[-1] if documents else {}
    steps.check(
        len(documents) == 1
        and document.get("number") == fiscal["documentNumber"]
        and [i["name"] for i in document.get("items", [])] == [MILK["name"], KEFIR["name"]]
        and document.get("messages") == fiscal["lines"],
        "the registrar's fiscal document: both items, the payment, the loyalty lines",
    )
    again = _call(api, f"/v1/cheques/{cheque['id']}/fiscal", body)
    steps.check(
        again["replayed"]
        and again["documentNumber"] == fiscal["documentNumber"]
        and len(emulator.documents) == 1
        and emulator.paper_text().count(title) == 1,
        "a retried print answers the same document and prints nothing",
    )
