"""`posbridge demo --passthrough`: an unmodified POS gets loyalty without calling our API.

The POS here knows nothing of posbridge: it speaks Shtrih-M (through our own driver, used
as its client library) to what it believes is its registrar, and reads what it believes
is its serial scanner.  Both are posbridge's virtual ports; behind them stand the Shtrih-M
emulator (the real registrar) and a scanner on a pty (the demo plays the customer at it).
The checks read the emulator's paper and fiscal documents and the sandbox's ledger:

- a receipt with a loyalty card scanned: the block printed inside the fiscal receipt;
- a receipt without a card: untouched;
- a receipt while processing is down: the offline notice, accrued once processing is back.

Exit 0 only if every step was checked and passed; a relay missing from this build is a
step not run, and fails the demo.
"""

from __future__ import annotations

import csv
import importlib.util
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bridge.config import parse
from bridge.rehearsal.demo import Shift, VirtualPort, free_port
from bridge.server import Service
from drivers.fiscal.base import FiscalItem, FiscalPayment, PaymentKind, TaxSystem
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih.printer import ShtrihFiscalPrinter
from drivers.transport.serial import SerialTransport
from sandbox.registrar.emulator import RegistrarEmulator
from sandbox.server import SandboxServer

CARD_ONLINE = "2775000000050"
CARD_OFFLINE = "2775000000012"
# the POS's own product table, keyed by the barcode it reads from its scanner
PRODUCTS = {
    "4600000000015": ("1001", "Молоко 3,2% 1 л", Decimal("89.90")),
    "4600000000039": ("2001", "Хлеб ржаной 500 г", Decimal("55.00")),
    "4600000000022": ("1002", "Кефир 1% 0,9 л", Decimal("74.50")),
}
RELAYS = ("bridge.passthrough.registrar", "bridge.passthrough.scanner")
WAIT = 10.0  # seconds any one thing may take before the step fails


def run(out: Path, language: str = "ru", say: Callable[[str], None] = print) -> int:
    shift = Shift(out, language, say)
    out.mkdir(parents=True, exist_ok=True)
    missing = [name for name in RELAYS if importlib.util.find_spec(name) is None]
    if missing:
        for name in missing:
            shift.check(False, f"{name} is not in this build: the pass-through shift was not run")
        say("demo FAILED: not run")
        return 1
    with tempfile.TemporaryDirectory(prefix="posbridge-passthrough-") as tmp:
        _play(shift, Path(tmp))
    took = time.monotonic() - shift.started
    shift.check(took < 60, f"pass-through demo finished in {took:.1f} s (under 60 s)")
    say("demo " + ("passed" if not shift.failures else f"FAILED: {len(shift.failures)} step(s)"))
    return 0 if not shift.failures else 1


def _config(work: Path, sandbox_url: str, kkt_port: int, scanner: str, language: str) -> Any:
    catalog = work / "catalog.csv"  # the file the shop pushes with `posbridge catalog push`
    with catalog.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["goodsId", "barcode", "name", "price"])
        writer.writerows([gid, code, name, price] for code, (gid, name, price) in PRODUCTS.items())
    return parse(
        {
            "processing": {
                "url": sandbox_url,
                "login": "register-1",
                "password": "secret-1",
                "lock_file": str(work / "processing.lock"),
                "read_timeout": 5.0,
                "register_id": "demo-pos-3",
            },
            "journal": {
                "path": str(work / "journal.sqlite"),
                "probe_min_seconds": 0.2,
                "probe_max_seconds": 1.0,
            },
            "api": {"port": free_port(), "token": secrets.token_hex(16)},
            "receipt": {"language": language},
            "devices": [
                {
                    "name": "kkt",
                    "kind": "registrar",
                    "connection": "tcp",
                    "host": "127.0.0.1",
                    "tcp_port": kkt_port,
                },
                {"name": "scanner", "kind": "scanner", "connection": "serial", "port": scanner},
            ],
            "passthrough": [
                {
                    "name": "kkt",
                    "kind": "registrar",
                    "device": "kkt",
                    "link": str(work / "run" / "kkt"),
                    "catalog": str(catalog),
                    "settle_budget": 5.0,
                },
                {
                    "name": "scanner",
                    "kind": "scanner",
                    "device": "scanner",
                    "link": str(work / "run" / "scanner"),
                },
            ],
        }
    )


def _play(shift: Shift, work: Path) -> None:
    say = shift.say
    scanner = VirtualPort()
    sandbox = SandboxServer(work / "processing.db").start()
    try:
        with RegistrarEmulator() as emulator:
            port = emulator.start_tcp()
            config = _config(work, sandbox.url, port, scanner.path, shift.language)
            token = config.api.secret_token() or ""
            say(f"1. processing sandbox at {sandbox.url}; registrar emulator as the real KKT")
            with Service(config, token) as service:
                kkt_link, scan_link = work / "run" / "kkt", work / "run" / "scanner"
                say(f"2. service up: the POS's registrar is {kkt_link}, its scanner {scan_link}")
                shift.check(
                    kkt_link.is_symlink() and scan_link.is_symlink(),
                    "the virtual ports are where the POS looks for them",
                )
                pos = Pos(kkt_link, scan_link)
                try:
                    _shift(shift, pos, service, emulator, scanner, sandbox)
                except (TimeoutError, RuntimeError, OSError, KeyError) as exc:
                    shift.check(False, f"the shift could not go on: {exc!r}")
                finally:
                    pos.close()
            (shift.out / "passthrough-paper.txt").write_text(
                emulator.paper_text() + "\n", encoding="utf-8"
            )
            say(f"   the registrar's paper is in {shift.out / 'passthrough-paper.txt'}")
    finally:
        sandbox.stop()
        scanner.close()


class Pos:
    """An unmodified POS: Shtrih-M to its registrar port, bytes from its scanner port."""

    def __init__(self, kkt: Path, scanner: Path) -> None:
        self.registrar = ShtrihFiscalPrinter("pos", SerialTransport(str(kkt)))
        self.registrar.transport.open()
        self.scanner = SerialTransport(str(scanner))
        self.scanner.open()
        self._buffer = b""

    def read_scan(self, timeout: float = WAIT) -> str:
        """One scan as the POS gets it (up to its CR), with an AIM prefix stripped."""
        until = time.monotonic() + timeout
        while b"\r" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("no scan reached the POS's scanner port")
            self._buffer += self.scanner.read(64, timeout=min(left, 0.2))
        raw, _, self._buffer = self._buffer.partition(b"\r")
        text = raw.decode("ascii", "replace")
        return text[3:] if text.startswith("]") else text

    def nothing_scanned(self, within: float = 0.3) -> bool:
        return not self._buffer and self.scanner.read(64, timeout=within) == b""

    def sell(self, codes: list[str]) -> Decimal:
        """Open a receipt, sell what was scanned, close it paid in cash."""
        self.registrar.begin_fiscal_receipt()
        total = Decimal(0)
        for code in codes:
            _, name, price = PRODUCTS[code]
            self.registrar.print_rec_item(
                FiscalItem(name=name, quantity=Decimal(1), price=price, amount=price)
            )
            total += price
        cash = [FiscalPayment(PaymentKind.CASH, total)]
        self.registrar.end_fiscal_receipt(cash, TaxSystem.OSN)
        return total

    def close_shift(self) -> None:
        """The Z-report (0x41, administrator's password), as the POS closes its day."""
        z_report = cmd.Command(0x41, b"", cmd.Password.ADMIN, prints=True)
        self.registrar.direct_io(z_report)

    def close(self) -> None:
        self.registrar.transport.close()
        self.scanner.close()


def _scan_products(shift: Shift, pos: Pos, scanner: VirtualPort, codes: list[str]) -> None:
    for code in codes:
        scanner.send(f"]E0{code}\r".encode())
        got = pos.read_scan()
        shift.check(got == code, f"the POS reads product {code} from its scanner port")


def _scan_card(shift: Shift, pos: Pos, service: Service, scanner: VirtualPort, card: str) -> None:
    manager = service.register.passthrough
    if manager is None:
        raise RuntimeError("the service runs no pass-through")
    scanner.send(f"{card}\r".encode())
    _wait(lambda: manager.session.pending_card() is not None, "the card captured")
    shift.check(pos.nothing_scanned(), "loyalty card captured by posbridge, not passed to the POS")


def _shift(
    shift: Shift,
    pos: Pos,
    service: Service,
    emulator: RegistrarEmulator,
    scanner: VirtualPort,
    sandbox: SandboxServer,
) -> None:
    say = shift.say
    title = "ПРОГРАММА ЛОЯЛЬНОСТИ" if shift.language == "ru" else "LOYALTY PROGRAM"
    manager = service.register.passthrough
    if manager is None:
        raise RuntimeError("the service runs no pass-through")
    # the relay opens the scanner on its own thread, and opening a serial port discards
    # what waits in it: the customer scans once the scanner is open, as at a real till
    relay = manager.relays["scanner"]
    _wait(lambda: bool(getattr(relay, "online", False)), "the scanner opened by its relay")

    say("3. customer 1 scans a loyalty card; the cashier scans milk and bread")
    balance = Decimal(str((sandbox.ledger(CARD_ONLINE) or {}).get("balance", 0)))
    _scan_card(shift, pos, service, scanner, CARD_ONLINE)
    _scan_products(shift, pos, scanner, ["4600000000015", "4600000000039"])
    pos.sell(["4600000000015", "4600000000039"])
    [first] = emulator.documents
    block = list(first.get("messages", []))
    paper = emulator.paper_text()
    shift.check(
        any(title in line for line in block) and all(line in paper for line in block),
        f"the loyalty block ({len(block)} lines) printed inside the fiscal receipt",
    )
    shift.check(0 <= paper.find(title) < paper.rfind("ИТОГ"), "the block comes before the total")
    shift.check(not any(CARD_ONLINE in line for line in block), "the card number is masked")
    after = Decimal(str((sandbox.ledger(CARD_ONLINE) or {}).get("balance", 0)))
    shift.check(after > balance, f"processing accrued {after - balance} to the card")
    counts = manager.session.counts
    shift.check(
        counts.items == 2 and counts.unmatched == 0,
        f"both items matched the pushed catalogue ({counts.items} items, {counts.unmatched} not)",
    )

    say("4. customer 2, no card: kefir")
    _scan_products(shift, pos, scanner, ["4600000000022"])
    pos.sell(["4600000000022"])
    second = emulator.documents[-1]
    shift.check(
        len(emulator.documents) == 2
        and second.get("messages") == []
        and emulator.paper_text().count(title) == 1,
        "a receipt without a card is left untouched",
    )

    say("5. processing goes away; customer 3 scans a card and buys milk")
    sandbox.stop()
    _scan_card(shift, pos, service, scanner, CARD_OFFLINE)
    _scan_products(shift, pos, scanner, ["4600000000015"])
    pos.sell(["4600000000015"])
    third = emulator.documents[-1]
    notice = "восстановления связи" if shift.language == "ru" else "connection is restored"
    text = " ".join(" ".join(third.get("messages", [])).split())
    shift.check(
        len(emulator.documents) == 3 and notice in text,
        "the offline notice printed inside the fiscal receipt",
    )
    pending = service.register.offline.journal.counts().pending
    shift.check(pending >= 1, f"the accrual waits in the journal ({pending} request(s))")

    say("6. processing returns; the journal drains")
    sandbox.start()
    _wait(lambda: service.register.offline.journal.counts().pending == 0, "the journal drained")
    ledger = sandbox.ledger(CARD_OFFLINE) or {}
    shift.check(Decimal(str(ledger.get("accrued", 0))) > 0, "processing accrued card 3 after all")
    stats = sandbox.status()
    shift.check(
        stats["overlaps"] == 0 and stats["duplicates"] == 0,
        "processing saw no overlapping and no duplicate requests",
    )

    say("7. the POS closes the shift (Z-report)")
    pos.close_shift()
    paper = emulator.paper_text()
    shift.check(
        "ОТЧЕТ О ЗАКРЫТИИ СМЕНЫ" in paper and paper.count(title) == 2,
        "the shift closed through the pass-through, nothing added to the report",
    )
    relays = manager.counters().get("kkt", {})
    shift.check(
        relays.get("frames_inserted", 0) > 0 and relays.get("failures", 1) == 0,
        f"registrar relay: {relays}",
    )


def _wait(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll a condition another thread makes true (no event is published for it)."""
    tick = threading.Event()
    until = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > until:
            raise TimeoutError(f"timed out waiting for {what}")
        tick.wait(0.05)
