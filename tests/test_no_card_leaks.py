"""Card numbers fed in at every door of a real service never come out of any exit.

The service runs for real (uvicorn on loopback, the sandbox behind a fault proxy, a
scanner and a card reader on ptys, its log going to a file through `bridge.logs`).
Card numbers enter as a bank card's track 1, a Russian-layout track 2, a whole track 2
that the scanner never finished, a 16-digit scan nobody recognises, and processing's
own texts (error, cashier and cheque messages, one written in groups).  Then every exit
is read back whole: the log file, the SSE stream, /v1/status, problem bodies, cheque
views, the journal (`last_error` and the export) and the receipt, as text and ESC/POS.
None may hold any of the numbers.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge import logs
from bridge.loyalty.journal import Journal
from bridge.loyalty.protocol import (
    REQUEST_MODELS,
    Identifier,
    Operation,
    dumps,
    loads,
    local_now,
)
from bridge.loyalty.request import PreparedRequest, new_id
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.drivers.pty_helpers import Pty
from tests.fault_proxy import FaultProxy, fault_proxy
from tests.service.conftest import TOKEN, service_config
from tests.service.sse import SseReader

ROOT = Path(__file__).resolve().parents[1]
LOYALTY = "2775000000012"  # the sandbox's active loyalty card (EAN, not Luhn)
P13 = "4222222222222"  # Russian-layout track 2 on the card reader
P15 = "378282246310005"  # processing's cashier message, in groups: 3782 822463 10005
P16_TRACK = "4111111111111111"  # a whole track 2 the scanner never finished
P16_SCAN = "5555555555554444"  # a scan that is no barcode we know
P16_ERR = "4000056655665556"  # processing's error message
P16_RECEIPT = "6011111111111117"  # processing's cheque message, printed on the receipt
P19 = "6011000000000000001"  # a bank card's track 1 on the card reader
PANS = [P13, P15, P16_TRACK, P16_SCAN, P16_ERR, P16_RECEIPT, P19]
GROUPED_P15 = "3782 822463 10005"
LINES = [
    {
        "goodsId": "1001",
        "barcode": "4600000000015",
        "name": "Milk",
        "price": "89.90",
        "quantity": "2",
    }
]


def leaks(text: str) -> list[str]:
    """The card numbers found in `text`, also when their digits are grouped."""
    squeezed = re.sub(r"(?<=\d)[ -](?=\d)", "", text)
    return [p for p in PANS if p in text or p in squeezed]


class RecordingSse(SseReader):
    """Keeps every event it reads, also the ones `next` skips."""

    def __init__(self, url: str, token: str) -> None:
        self.seen: list[dict[str, Any]] = []
        super().__init__(url, token)

    def next(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            event = self.events.get(timeout=timeout)
            self.seen.append(event)
            if event["type"] == kind:
                return event

    def rest(self) -> list[dict[str, Any]]:
        while not self.events.empty():
            self.seen.append(self.events.get_nowait())
        return self.seen


def refusal(message: str, cashier: str) -> bytes:
    return json.dumps(
        {"code": "LimitGained", "errorMessage": message, "cashierMessage": cashier}
    ).encode()


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The service's own log setup, to a file; the test's logging is put back after."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    path = tmp_path / "posbridge.log"
    logs.setup("DEBUG", path)
    try:
        yield path
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved
        root.setLevel(level)


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


def test_no_exit_shows_a_card_number(tmp_path: Path, log_file: Path, proxy: FaultProxy) -> None:
    outputs: dict[str, str] = {}
    with Pty() as scanner, Pty() as msr:
        cfg = service_config(
            tmp_path,
            proxy.url,
            devices=[
                {
                    "name": "scanner",
                    "kind": "scanner",
                    "connection": "serial",
                    "port": scanner.path,
                },
                {"name": "msr", "kind": "card_reader", "connection": "serial", "port": msr.path},
            ],
        )
        svc = Service(cfg, TOKEN).start()
        sse = RecordingSse(f"{svc.url}/v1/events", TOKEN)
        api = httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30)
        try:
            seen = _drive(sse, api, scanner, msr, proxy)
            outputs["status"] = api.get("/v1/status").text
            outputs["answers"] = "\n".join(seen)
        finally:
            api.close()
            sse.close()
            svc.stop()
        outputs["sse"] = dumps(sse.rest()).decode()
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        entries = list(journal.entries())
        outputs["journal last_error"] = "\n".join(e.last_error or "" for e in entries)
        outputs["journal export"] = "\n".join(dumps(e.export()).decode() for e in entries)
        identifiers = {str(e.card()) for e in entries}
    finally:
        journal.close()
    outputs["journal cli"] = _journal_cli(tmp_path, proxy.url)
    outputs["log"] = log_file.read_text(encoding="utf-8")

    found = {name: leaks(text) for name, text in outputs.items()}
    assert found == {name: [] for name in outputs}

    # the inputs did reach every exit (masked), so an empty exit cannot pass by accident
    assert P13 in identifiers, "the Russian-layout swipe should be the cheque's card"
    assert "shaped ';9999999999999999=9999999999?'" in outputs["status"]  # lastError
    assert "5555********4444" in outputs["sse"]  # the unknown scan
    assert "42*******2222" in outputs["sse"]  # the Russian-layout swipe
    assert "60110**********0001" in outputs["sse"]  # the track 1 swipe
    assert "4000********5556" in outputs["journal last_error"]
    assert "4000********5556" in outputs["answers"] and "378* ****** *0005" in outputs["answers"]
    assert "6011********1117" in outputs["answers"]  # receipt text
    assert "42*******2222" in outputs["journal export"]
    assert (
        "42*******2222" in outputs["journal cli"] and "4000********5556" in outputs["journal cli"]
    )
    assert "incomplete scan discarded" in outputs["log"]


def _journal_cli(tmp_path: Path, url: str) -> str:
    """`posbridge journal list` and `journal export`, as a technician runs them."""
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "cli.lock"}"\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
    )
    cfg.chmod(0o600)
    export = tmp_path / "export.jsonl"
    texts = []
    for args in (["list"], ["list", "--json"], ["export", str(export)]):
        out = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(cfg), "journal", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr
        texts += [out.stdout, out.stderr]
    return "\n".join([*texts, export.read_text(encoding="utf-8")])


def _drive(
    sse: RecordingSse, api: httpx.Client, scanner: Pty, msr: Pty, proxy: FaultProxy
) -> list[str]:
    """Feed every card number in; return every API answer body read on the way."""
    answers: list[str] = []

    def call(method: str, url: str, **kw: Any) -> dict[str, Any]:
        r = api.request(method, url, **kw)
        answers.append(r.text)
        return dict(loads(r.content))

    _wait_online(sse, api, "scanner")
    _wait_online(sse, api, "msr")
    # devices, no cheque open yet
    scanner.send(f";{P16_TRACK}=2512101000?".encode())  # no CR: incomplete
    error = sse.next("device_error")
    assert error["device"] == "scanner" and "incomplete scan" in error["message"]
    scanner.send(f"{P16_SCAN}\r".encode())
    scan = sse.next("scan")
    assert scan["kind"] == "unknown"
    msr.send(f"%B{P19}^DOE/JOHN^2512101?\r".encode())
    assert sse.next("swipe")["tracks"]["1"] == "ok"

    # processing quotes card numbers in a refusal: problem detail and cashier message
    proxy.set_fault(
        "garbage",
        content_type="application/json",
        only="/Calculate",
        body=refusal(f"limit reached for card {P16_ERR}", f"Карта {GROUPED_P15}: лимит"),
    )
    a = call("POST", "/v1/cheques", json={"card": LOYALTY, "lines": LINES})
    problem = call("POST", f"/v1/cheques/{a['id']}/calculate")
    assert problem["status"] == 422 and "limit reached" in problem["detail"]
    call("POST", f"/v1/cheques/{a['id']}/cancel")

    # the Russian-layout swipe attaches to the open cheque; its final step is refused
    # by processing with a card number in the text: the journal keeps that text
    proxy.set_fault("pass")
    b = call("POST", "/v1/cheques", json={"lines": LINES})
    msr.send(f"ж{P13}=4912,\r".encode())
    assert sse.next("swipe")["tracks"]["2"] == "ok"
    assert sse.next("card_attached")["chequeId"] == b["id"]
    proxy.set_fault(
        "garbage",
        content_type="application/json",
        only="/Bonus",
        body=refusal(f"card {P16_ERR} refused", "refused"),
    )
    call("POST", f"/v1/cheques/{b['id']}/confirm")

    # processing's texts on a good purchase reach the cheque view and the receipt
    proxy.set_fault(
        "garbage",
        content_type="application/json",
        only="/Confirm",
        body=json.dumps(
            {
                "code": "Ok",
                "balance": 10,
                "accruedAmount": 1,
                "chequeMessage": f"Спасибо! Карта {P16_RECEIPT}",
                "cashierMessage": f"card {GROUPED_P15}",
            }
        ).encode(),
    )
    c = call("POST", "/v1/cheques", json={"card": LOYALTY, "lines": LINES})
    call("POST", f"/v1/cheques/{c['id']}/calculate")
    call("POST", f"/v1/cheques/{c['id']}/confirm")
    call("GET", f"/v1/cheques/{c['id']}")
    receipt = call("POST", "/v1/receipts/loyalty", json={"chequeId": c["id"]})
    answers.append(base64.b64decode(receipt["escposBase64"]).decode("cp866", "replace"))
    proxy.set_fault("pass")
    return answers


def _wait_online(sse: SseReader, api: httpx.Client, name: str) -> None:
    status = api.get("/v1/status").json()
    if any(d["name"] == name and d["power"] == "online" for d in status["devices"]):
        return
    while True:
        event = sse.next("device_status")
        if event["device"] == name and event["power"] == "online":
            return


def test_journal_error_texts_and_export_are_masked(tmp_path: Path) -> None:
    """Both ways a journal entry keeps processing's words: a failed attempt and a refusal."""
    journal = Journal(tmp_path / "j.sqlite")
    try:
        requests = [
            PreparedRequest(
                Operation.CONFIRM,
                REQUEST_MODELS[Operation.CONFIRM](
                    operation_id=new_id(),
                    operation_date=local_now(),
                    identifier=Identifier(value=P16_TRACK),
                ),
                purchase_id=new_id(),
            )
            for _ in range(2)
        ]
        first, second = (journal.append(r) for r in requests)
        journal.failed_attempt(first.seq, f"processing busy with card {P16_ERR}")
        journal.finish(
            second.seq,
            "rejected",
            {"code": "LimitGained", "errorMessage": f"card {GROUPED_P15}"},
            error=f"LimitGained: card {P19}",
        )
        entries = list(journal.entries())
        stored = [e.last_error or "" for e in entries]
        exported = [dumps(e.export()).decode() for e in entries]
        unmasked = [dumps(e.export(unmasked=True)).decode() for e in entries]
    finally:
        journal.close()
    assert stored == [
        "processing busy with card 4000********5556",
        "LimitGained: card 60110**********0001",
    ]
    assert leaks("\n".join(stored + exported)) == []
    assert "378* ****** *0005" in exported[1] and "4111********1111" in exported[0]
    assert P16_TRACK in unmasked[0]  # --unmasked still gives the card back for replays


def test_log_lines_mask_arguments_and_exceptions(tmp_path: Path, log_file: Path) -> None:
    log = logging.getLogger("posbridge.test")
    log.warning("swipe %s", f";{P16_TRACK}=2512?")
    try:
        raise ValueError(f"bad card {P13}")
    except ValueError:
        log.exception("failed for %s", GROUPED_P15)
    text = log_file.read_text(encoding="utf-8")
    assert leaks(text) == []
    assert "4111********1111" in text and "42*******2222" in text and "378* ****** *0005" in text


def test_events_and_logs_keep_a_cheque_id_whole(log_file: Path) -> None:
    """A uuid4 holds a Luhn-valid run about once in 340; the POS matches events by it."""
    from bridge.service.events import EventBus

    cheque_id = "910acfc1-0709-4832-8242-8ed4b0394bf8"  # 1-0709-4832-8242 is Luhn-valid
    attached = EventBus().publish(
        "card_attached", chequeId=cheque_id, number="20261203-2", card=f"swiped {P16_TRACK}"
    )
    assert attached["chequeId"] == cheque_id and attached["card"] == "swiped 4111********1111"
    text = log_file.read_text(encoding="utf-8")
    assert f"chequeId={cheque_id}" in text and leaks(text) == []


def test_problem_bodies_mask_every_text() -> None:
    from bridge.api.problems import problem

    body = loads(
        bytes(
            problem(
                422,
                "x",
                f"card {P16_ERR}",
                f"Карта {GROUPED_P15}",
                errors=[{"msg": f"value {P19}"}],
            ).body
        )
    )
    assert leaks(dumps(body).decode()) == []
    assert body["detail"] == "card 4000********5556"


def test_events_mask_everything_but_a_product_code() -> None:
    """A GTIN can be Luhn-valid by chance (4600000000060 is); the POS needs it as scanned."""
    from bridge.service.events import EventBus

    bus = EventBus()
    product = bus.publish(
        "scan", device="s", kind="gtin", text="4600000000060", gtin="04600000000060"
    )
    assert product["text"] == "4600000000060" and product["gtin"] == "04600000000060"
    unknown = bus.publish("scan", device="s", kind="unknown", text=P16_SCAN, reason="r")
    error = bus.publish("device_error", device="s", message=f"listener failed: {P19!r}")
    nested = bus.publish("device_status", device="s", detail={"reason": f"card {P13}"})
    assert unknown["text"] == "5555********4444"
    assert leaks(json.dumps([unknown, error, nested], ensure_ascii=False)) == []
