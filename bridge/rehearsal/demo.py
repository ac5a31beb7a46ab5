"""`posbridge demo`: a realistic shift on virtual devices, checked step by step.

Everything is real except the hardware: the processing sandbox over loopback, the
service with its journal and POS API, and a scanner, card reader and printer on
pseudo-terminals that the drivers open like /dev/ttyUSB0.  The demo plays the POS
(it calls the API and listens to its event stream) and the customer (it swipes, scans).
Receipts are left as text, PNG and raw ESC/POS in the output folder.
"""

from __future__ import annotations

import base64
import os
import pty
import queue
import secrets
import select
import socket
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from stdnum import ean

from bridge.config import parse
from bridge.loyalty.protocol import Cheque, ChequeLine, loads, local_now
from bridge.receipts.cheque_block import block_for
from bridge.receipts.png import write_png
from bridge.receipts.sample import cheque_receipt
from bridge.rehearsal.fiscal_step import fiscal_sale
from bridge.server import Service
from drivers.printer.document import render_text
from sandbox.server import SandboxServer

CARD_SWIPED = "2775000000012"
CARD_SCANNED = "2775000000050"
GS = "\x1d"

# the demo POS's own product table: what the scanner reads -> what goes on the cheque
PRODUCTS = {
    "04600000000015": ("1001", "Молоко 3,2% 1 л", Decimal("89.90")),
    "04600000000039": ("2001", "Хлеб ржаной 500 г", Decimal("55.00")),
    "04600000000022": ("1002", "Кефир 1% 0,9 л", Decimal("74.50")),
}
WEIGHED = {"04001": ("4001", "Яблоки, кг", Decimal("120.00"))}


class VirtualPort:
    """One end of a pty pair: the driver opens `path`, the demo plays the device."""

    def __init__(self) -> None:
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        # the slave stays open here too: with no slave open, reading the master gives EIO

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self._slave)
        os.close(self.master)


class VirtualPrinter(VirtualPort):
    """Collects what the driver prints; one job ends at a cut (GS V)."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: queue.Queue[bytes] = queue.Queue()
        self._stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                buf += os.read(self.master, 65536)
            except OSError:
                return
            while b"\x1dV" in buf:
                end = buf.index(b"\x1dV") + 3
                self.jobs.put(buf[:end])
                buf = buf[end:]

    def close(self) -> None:
        self._stop.set()
        super().close()


@dataclass
class Shift:
    out: Path
    language: str = "ru"
    say: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def check(self, ok: bool, what: str) -> bool:
        self.say(f"     [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            self.failures.append(what)
        return ok


class Pos:
    """The demo's POS: API calls plus the event stream it reacts to."""

    def __init__(self, url: str, token: str) -> None:
        self.api = httpx.Client(base_url=url, headers={"X-Posbridge-Token": token}, timeout=30)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._open = threading.Event()
        threading.Thread(target=self._listen, daemon=True).start()
        if not self._open.wait(10):
            raise RuntimeError("the POS API event stream did not open")

    def _listen(self) -> None:
        try:
            with self.api.stream("GET", "/v1/events", timeout=httpx.Timeout(10, read=None)) as r:
                self._open.set()
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.put(loads(line[6:]))
        except httpx.HTTPError:
            return

    def wait(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} event within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                raise TimeoutError(f"no {kind} event within {timeout:.0f} s") from None
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = self.api.request(method, path, **kw)
        data = loads(r.content)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {data}")
        return data  # type: ignore[no-any-return]

    def line_for_scan(self, cheque_id: str, scan: dict[str, Any]) -> dict[str, Any]:
        if scan["kind"] == "weight_item":
            goods, name, price = WEIGHED[scan["plu"]]
            qty = Decimal(scan["weight_kg"])
        else:
            goods, name, price = PRODUCTS[scan["gtin"]]
            qty = Decimal(1)
        line = {
            "goodsId": goods,
            "name": name,
            "price": str(price),
            "quantity": str(qty),
            "barcode": scan["text"] if scan["kind"] != "marking_code" else scan["gtin"],
        }
        return self.call("POST", f"/v1/cheques/{cheque_id}/lines", json={"lines": [line]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weight_code(plu: str, grams: int) -> str:
    body = f"22{plu}{grams:05d}"
    return body + ean.calc_check_digit(body)


def run(out: Path, language: str = "ru", say: Callable[[str], None] = print) -> int:
    shift = Shift(out, language, say)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="posbridge-demo-") as tmp:
        work = Path(tmp)
        scanner, msr, printer = VirtualPort(), VirtualPort(), VirtualPrinter()
        token = secrets.token_hex(16)
        sandbox = SandboxServer(work / "processing.db").start()
        say(f"1. processing sandbox at {sandbox.url}")
        config = parse(
            {
                "processing": {
                    "url": sandbox.url,
                    "login": "register-1",
                    "password": "secret-1",
                    "lock_file": str(work / "processing.lock"),
                    "read_timeout": 5.0,
                    "register_id": "demo-pos-1",
                },
                "journal": {
                    "path": str(work / "journal.sqlite"),
                    "probe_min_seconds": 0.2,
                    "probe_max_seconds": 1.0,
                },
                "api": {"port": free_port(), "token": token},
                "receipt": {"language": language, "columns": 42, "printer": "receipt"},
                "devices": [
                    {
                        "name": "scanner",
                        "kind": "scanner",
                        "connection": "serial",
                        "port": scanner.path,
                    },
                    {
                        "name": "msr",
                        "kind": "card_reader",
                        "connection": "serial",
                        "port": msr.path,
                    },
                    {
                        "name": "receipt",
                        "kind": "printer",
                        "connection": "serial",
                        "port": printer.path,
                        "profile": "TM-T88III",
                        "paper_mm": 80,
                    },
                ],
            }
        )
        service = Service(config, token).start()
        try:
            say(
                f"2. service up, POS API at {service.url}; virtual scanner {scanner.path},"
                f" card reader {msr.path}, printer {printer.path}"
            )
            pos = Pos(service.url, token)
            _wait_devices(pos, shift)
            _online_purchase(shift, pos, service, scanner, msr, printer)
            _offline_purchase(shift, pos, service, sandbox, scanner, printer)
            fiscal_sale(shift, sandbox.url, work)
        except (TimeoutError, RuntimeError, queue.Empty, KeyError) as exc:
            shift.check(False, f"the shift could not go on: {exc!r}")
        finally:
            service.stop()
            sandbox.stop()
            for port in (scanner, msr, printer):
                port.close()
    took = time.monotonic() - shift.started
    shift.check(took < 30, f"demo finished in {took:.1f} s (under 30 s)")
    say(f"receipts are in {out}/")
    say("demo " + ("passed" if not shift.failures else f"FAILED: {len(shift.failures)} step(s)"))
    return 0 if not shift.failures else 1


def _wait_devices(pos: Pos, shift: Shift) -> None:
    status = pos.call("GET", "/v1/status")
    online = {d["name"] for d in status["devices"] if d["power"] == "online"}
    while not {"scanner", "msr"} <= online:
        event = pos.wait("device_status")
        if event["power"] == "online":
            online.add(event["device"])
    shift.check(True, "scanner and card reader online")


def _online_purchase(
    shift: Shift,
    pos: Pos,
    service: Service,
    scanner: VirtualPort,
    msr: VirtualPort,
    printer: VirtualPrinter,
) -> None:
    say = shift.say
    say("3. customer 1: cashier opens a cheque, customer swipes a loyalty card")
    cheque = pos.call("POST", "/v1/cheques", json={})
    msr.send(f";{CARD_SWIPED}=2912?\r".encode())
    swipe = pos.wait("swipe")
    shift.check(swipe["card"] == "27*******0012", f"swipe read, card shown masked: {swipe['card']}")
    attached = pos.wait("card_attached")
    shift.check(attached["chequeId"] == cheque["id"], "card attached to the open cheque")

    say("4. cashier scans: milk (EAN-13), apples on the scale (weight code), kefir (marking code)")
    codes = [
        "]E04600000000015",
        weight_code("04001", 1234),
        f"]d2010460000000002221sN7Rq{GS}93dGVz",
    ]
    for code in codes:
        scanner.send(code.encode("latin-1") + b"\r")
        scan = pos.wait("scan")
        say(
            f"     scan -> {scan['kind']}"
            + (f", PLU {scan['plu']}, {scan['weight_kg']} kg" if "plu" in scan else "")
            + (f", GTIN {scan['gtin']}" if scan.get("gtin") else "")
        )
        pos.line_for_scan(cheque["id"], scan)
    kinds_ok = True
    view = pos.call("GET", f"/v1/cheques/{cheque['id']}")
    kinds_ok = len(view["lines"]) == 3 and view["lines"][1]["quantity"] == Decimal("1.234")
    shift.check(kinds_ok, f"3 lines on the cheque, total {view['total']}")

    say("5. calculate, redeem 50 bonuses, confirm")
    calc = pos.call("POST", f"/v1/cheques/{cheque['id']}/calculate")
    say(f"     balance {calc['balanceBefore']}, may redeem up to {calc['availableBonuses']}")
    shift.check(calc["balanceBefore"] == Decimal("500.00"), "balance before is 500.00")
    pos.call("POST", f"/v1/cheques/{cheque['id']}/payment", json={"amount": "50"})
    done = pos.call("POST", f"/v1/cheques/{cheque['id']}/confirm")
    say(
        f"     redeemed {done['redeemed']}, accrued {done['accrued']},"
        f" balance now {done['balanceAfter']}"
    )
    shift.check(
        done["redeemed"] == Decimal("50.00") and (done["accrued"] or 0) > 0,
        "bonuses redeemed and accrued",
    )
    shift.check(
        done["balanceAfter"] == Decimal("450.00") + done["accrued"],
        "balance after = 500 - 50 + accrued",
    )
    _print_and_save(shift, pos, service, printer, cheque["id"], 1)


def _offline_purchase(
    shift: Shift,
    pos: Pos,
    service: Service,
    sandbox: SandboxServer,
    scanner: VirtualPort,
    printer: VirtualPrinter,
) -> None:
    say = shift.say
    say("6. processing goes away")
    sandbox.stop()
    say("7. customer 2: loyalty card scanned as a barcode, bread, sold offline")
    cheque = pos.call("POST", "/v1/cheques", json={})
    scanner.send(f"{CARD_SCANNED}\r".encode())
    scan = pos.wait("scan")
    shift.check(scan["kind"] == "loyalty_card", f"loyalty card recognised: {scan['text']}")
    pos.wait("card_attached", chequeId=cheque["id"])
    scanner.send(b"]E04600000000039\r")
    pos.line_for_scan(cheque["id"], pos.wait("scan"))
    calc = pos.call("POST", f"/v1/cheques/{cheque['id']}/calculate")
    shift.check(calc["offline"] and calc["discount"] == 0, "offline: no discount calculated")
    done = pos.call("POST", f"/v1/cheques/{cheque['id']}/confirm")
    shift.check(done["queued"], "accrual queued in the journal")
    status = pos.call("GET", "/v1/status")
    shift.check(
        status["connectivity"] == "offline" and status["journal"]["pending"] == 2,
        f"status: {status['connectivity']}, {status['journal']['pending']} waiting",
    )
    lines = _print_and_save(shift, pos, service, printer, cheque["id"], 2)
    notice = "восстановления связи" if shift.language == "ru" else "connection is restored"
    shift.check(notice in " ".join(" ".join(lines).split()), "receipt carries the offline notice")

    say("8. processing returns; the journal drains")
    sandbox.start()
    pos.wait("connectivity", timeout=20, state="online")
    status = pos.call("GET", "/v1/status")
    shift.check(status["journal"]["pending"] == 0, "journal drained")
    ledger = sandbox.ledger(CARD_SCANNED) or {}
    shift.check(
        ledger.get("accrued", 0) > 0,
        f"processing accrued {ledger.get('accrued')} to card 2 after the fact",
    )
    stats = sandbox.status()
    shift.check(
        stats["overlaps"] == 0 and stats["duplicates"] == 0,
        "processing saw no overlapping and no duplicate requests",
    )


def _print_and_save(
    shift: Shift, pos: Pos, service: Service, printer: VirtualPrinter, cheque_id: str, n: int
) -> list[str]:
    job = pos.call("POST", "/v1/receipts/print", json={"chequeId": cheque_id})
    try:
        printed = printer.jobs.get(timeout=15)
    except queue.Empty:
        state = pos.call("GET", "/v1/status")["devices"]
        raise TimeoutError(f"printer job {job['jobId']} not printed in 15 s: {state}") from None
    (shift.out / f"receipt-{n}.escpos").write_bytes(printed)
    shift.check(
        b"\x1bt" in printed, f"printer job {job['jobId']}: {len(printed)} bytes, code page pinned"
    )
    loyalty = pos.call("POST", "/v1/receipts/loyalty", json={"chequeId": cheque_id})
    for_pos = base64.b64decode(loyalty["escposBase64"])
    shift.check(
        b"\x1bt" in for_pos and len(loyalty["lines"]) > 3,
        "loyalty block for a POS that prints itself: text and ESC/POS",
    )
    register_cheque = service.register.book.get(cheque_id)
    view = register_cheque.view()
    cheque = Cheque(
        number=view["number"],
        date=local_now(),
        lines=[
            ChequeLine(
                position=ln["position"],
                goods_id=ln["goodsId"],
                name=ln["name"],
                price=ln["price"],
                quantity=ln["quantity"],
                amount=ln["amount"],
            )
            for ln in view["lines"]
        ],
    )
    receipt = cheque_receipt(
        shift.language,
        header=["posbridge demo", "Магазин №1" if shift.language == "ru" else "Shop 1"],
        cheque=cheque,
        discount=register_cheque.discount,
        block=block_for(register_cheque),
        qr=None,
    )
    lines = render_text(receipt, 42)
    (shift.out / f"receipt-{n}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_png(receipt, 42, shift.out / f"receipt-{n}.png")
    shift.check(
        all(CARD_SWIPED not in ln and CARD_SCANNED not in ln for ln in lines),
        f"receipt-{n}.txt/.png written, card number masked",
    )
    return lines
