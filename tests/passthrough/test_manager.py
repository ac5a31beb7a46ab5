"""[[passthrough]] entries inside the real register: a scanner stand-in on a pty, the Shtrih-M
emulator as the real registrar, the processing sandbox; the POS opens the virtual ports
by their symlinks (our Shtrih-M driver as its client library, pyserial for the scanner)."""

from __future__ import annotations

import json
import os
import select
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import serial

from bridge.api.models import StatusOut
from bridge.config import parse
from bridge.loyalty.protocol import mask_card
from bridge.metrics import Metrics
from bridge.passthrough.checks import passthrough_checks
from bridge.passthrough.scanner import ScannerRelay
from bridge.service.cheque import Line
from bridge.service.register import Register
from drivers.fiscal.base import FiscalItem, FiscalPayment, PaymentKind, TaxRate, TaxSystem
from drivers.fiscal.shtrih.printer import ShtrihFiscalPrinter
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport
from sandbox.registrar.emulator import RegistrarEmulator
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.fault_proxy import fault_proxy
from tests.net import free_port

CARD = "2775000000050"
MILK_CODE = "4600000000015"
TITLE = "LOYALTY PROGRAM"
CATALOG = "goodsId,barcode,name,price\n1001,4600000000015,Milk 3.2% 1 l,89.90\n"


@dataclass
class Rig:
    register: Register
    emulator: RegistrarEmulator
    scanner_master: int  # the "real" scanner: bytes written here are scans
    kkt_link: Path
    scan_link: Path
    tmp: Path


def config(tmp: Path, sandbox_url: str, kkt_port: int, scanner_port: str) -> Any:
    (tmp / "catalog.csv").write_text(CATALOG, encoding="utf-8")
    return parse(
        {
            "processing": {
                "url": sandbox_url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp / "processing.lock"),
                "read_timeout": 5.0,
            },
            "journal": {"path": str(tmp / "journal.sqlite")},
            "api": {"port": free_port(), "token": "test-token-0123456789"},
            "receipt": {"language": "en"},
            "devices": [
                {
                    "name": "kkt",
                    "kind": "registrar",
                    "connection": "tcp",
                    "host": "127.0.0.1",
                    "tcp_port": kkt_port,
                },
                {"name": "scan", "kind": "scanner", "connection": "serial", "port": scanner_port},
            ],
            "passthrough": [
                {
                    "name": "kkt-pos",
                    "kind": "registrar",
                    "device": "kkt",
                    "link": str(tmp / "run" / "kkt"),
                    "catalog": str(tmp / "catalog.csv"),
                    "settle_budget": 5.0,
                },
                {
                    "name": "scan-pos",
                    "kind": "scanner",
                    "device": "scan",
                    "link": str(tmp / "run" / "scanner"),
                },
            ],
        }
    )


@pytest.fixture
def rig(tmp_path: Path, sandbox_server: SandboxServer) -> Iterator[Rig]:
    master, slave = os.openpty()
    tty.setraw(slave)
    with RegistrarEmulator() as emulator:
        cfg = config(tmp_path, sandbox_server.url, emulator.start_tcp(), os.ttyname(slave))
        register = Register(cfg)
        register.start()
        try:
            yield Rig(
                register,
                emulator,
                master,
                tmp_path / "run" / "kkt",
                tmp_path / "run" / "scanner",
                tmp_path,
            )
        finally:
            register.stop()
            os.close(master)
            os.close(slave)


def pos_registrar(link: Path) -> ShtrihFiscalPrinter:
    printer = ShtrihFiscalPrinter("pos", SerialTransport(str(link)), answer_timeout=20)
    printer.transport.open()
    return printer


def sell(printer: ShtrihFiscalPrinter, name: str = "Milk 3.2% 1 l") -> None:
    printer.begin_fiscal_receipt()
    printer.print_rec_item(
        FiscalItem(
            name=name,
            quantity=Decimal(2),
            price=Decimal("89.90"),
            amount=Decimal("179.80"),
            tax=TaxRate.NONE,
        )
    )
    printer.end_fiscal_receipt([FiscalPayment(PaymentKind.CASH, Decimal("200.00"))], TaxSystem.OSN)


def read_scan(pos: serial.Serial, size: int) -> bytes:
    got = b""
    for _ in range(50):
        got += pos.read(size - len(got))
        if len(got) >= size:
            break
    return got


def wait_for(predicate: Any, what: str) -> None:
    done = threading.Event()
    for _ in range(200):
        if predicate():
            return
        done.wait(0.05)  # polling a condition another thread sets; no event to wait on
    raise AssertionError(f"never happened: {what}")


def test_scanner_and_registrar_pass_through_end_to_end(rig: Rig) -> None:
    assert rig.kkt_link.is_symlink() and rig.scan_link.is_symlink()
    assert rig.register.devices is not None
    assert "scan" not in rig.register.devices.devices  # the relay owns it, not the manager
    manager = rig.register.passthrough
    assert manager is not None
    relay = manager.relays["scan-pos"]
    assert isinstance(relay, ScannerRelay)
    # the relay opens the scanner on its own thread, and opening a serial port discards
    # what was waiting in it (pyserial flushes input): scan once the scanner is open
    wait_for(lambda: relay.online, "the scanner opened by its relay")
    with serial.Serial(str(rig.scan_link), 9600, timeout=0.2) as scanner:
        os.write(rig.scanner_master, CARD.encode() + b"\r")
        wait_for(lambda: manager.session.pending_card() is not None, "the card captured")
        waiting = rig.register.status()["passthrough"]
        assert waiting["pendingCard"] == mask_card(CARD) and CARD not in json.dumps(waiting)
        os.write(rig.scanner_master, MILK_CODE.encode() + b"\r")
        assert read_scan(scanner, len(MILK_CODE) + 1) == MILK_CODE.encode() + b"\r"
    printer = pos_registrar(rig.kkt_link)
    try:
        sell(printer)
        [with_card] = rig.emulator.documents
        assert any(TITLE in line for line in with_card["messages"]), with_card
        assert not any(CARD in line for line in with_card["messages"])
        sell(printer)  # no card this time: untouched
        assert rig.emulator.documents[-1]["messages"] == []
    finally:
        printer.transport.close()
    assert rig.emulator.paper_text().count(TITLE) == 1
    counts = manager.session.counts
    assert (counts.settled_online, counts.failed, counts.unmatched) == (1, 0, 0)
    assert manager.counters()["kkt-pos"]["frames_inserted"] > 0
    shown = StatusOut.model_validate(rig.register.status()).passthrough  # what /v1/status says
    assert shown is not None and shown["pendingCard"] is None
    relays = {r["name"]: r for r in shown["relays"]}
    assert relays["kkt-pos"]["running"] and relays["kkt-pos"]["error"] is None
    assert relays["kkt-pos"]["counters"]["frames_inserted"] > 0
    assert relays["kkt-pos"]["port"].startswith(f"pty {rig.kkt_link} -> /dev/pts/")
    assert (shown["sales"]["settledOnline"], shown["sales"]["unmatched"]) == (1, 0)
    metrics = Metrics()
    metrics.watch(rig.register)
    text = metrics.render().decode()
    assert 'posbridge_passthrough_items_total{match="matched"} 1.0' in text
    assert 'posbridge_passthrough_receipts_total{outcome="online"} 1.0' in text
    assert 'posbridge_passthrough_receipts_total{outcome="voided"} 0.0' in text
    assert 'posbridge_passthrough_running{kind="registrar",passthrough="kkt-pos"} 1.0' in text
    found = {
        name: (verdict, detail)
        for name, verdict, detail, _ in passthrough_checks(rig.register.config)
    }
    assert found["pass-through kkt-pos"][0] == "pass"
    assert found["pass-through items"][0] == "pass", found


def test_stop_removes_the_links(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    master, slave = os.openpty()
    try:
        with RegistrarEmulator() as emulator:
            cfg = config(tmp_path, sandbox_server.url, emulator.start_tcp(), os.ttyname(slave))
            register = Register(cfg)
            register.start()
            assert (tmp_path / "run" / "kkt").is_symlink()
            register.stop()
        assert not (tmp_path / "run" / "kkt").exists()
        assert not (tmp_path / "run" / "kkt").is_symlink()
        assert not (tmp_path / "run" / "scanner").is_symlink()
    finally:
        os.close(master)
        os.close(slave)


def test_a_port_that_cannot_be_made_is_retried_and_the_rest_runs(
    tmp_path: Path, sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bridge.passthrough.manager as manager_module

    monkeypatch.setattr(manager_module, "RETRY_SECONDS", 0.05)
    master, slave = os.openpty()
    (tmp_path / "run").mkdir()
    squatter = tmp_path / "run" / "kkt"
    squatter.write_text("not ours")
    try:
        cfg = config(tmp_path, sandbox_server.url, free_port(), os.ttyname(slave))
        register = Register(cfg)
        register.start()
        try:
            manager = register.passthrough
            assert manager is not None
            status = {s["name"]: s for s in manager.status()}
            assert status["kkt-pos"]["running"] is False
            assert "not a symlink" in (status["kkt-pos"]["error"] or "")
            assert status["scan-pos"]["running"] is True
            assert squatter.read_text() == "not ours"  # never replaced
            squatter.unlink()
            wait_for(lambda: squatter.is_symlink(), "the port made on a retry")
            wait_for(lambda: manager.status()[0]["running"], "the relay started on a retry")
        finally:
            register.stop()
    finally:
        os.close(master)
        os.close(slave)


def read_until_cut(fd: int) -> bytes:
    got = b""
    for _ in range(100):
        if b"\x1dV" in got and len(got) >= got.index(b"\x1dV") + 3:
            return got
        if select.select([fd], [], [], 0.1)[0]:
            got += os.read(fd, 65536)
    return got


def test_printer_pass_through_inserts_the_api_confirmed_block(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    cfg = parse(
        {
            "processing": {
                "url": sandbox_server.url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
            },
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "api": {"port": free_port(), "token": "test-token-0123456789"},
            "receipt": {"language": "en", "columns": 42},
            "devices": [
                {
                    "name": "receipt",
                    "kind": "printer",
                    "connection": "serial",
                    "port": os.ttyname(slave),
                }
            ],
            "passthrough": [
                {
                    "name": "printer-pos",
                    "kind": "printer",
                    "device": "receipt",
                    "link": str(tmp_path / "run" / "printer"),
                    "window": 30,
                }
            ],
        }
    )
    register = Register(cfg)
    register.start()
    try:
        assert register.devices is not None and "receipt" not in register.devices.queues
        plain = b"\x1b@SHOP\nMilk 89.90\n\x1dV\x00"
        with serial.Serial(str(tmp_path / "run" / "printer"), 9600, timeout=0.2) as pos:
            pos.write(plain)  # nothing confirmed: byte for byte
            assert read_until_cut(master) == plain
            book = register.book
            one = Line("1001", "Milk", Decimal("89.90"), Decimal(1), Decimal("89.90"))
            cheque = book.open(None, CARD, [one])
            book.calculate(cheque)
            book.confirm(cheque)
            register.publish_cheque("cheque_confirmed", cheque)  # as the API's confirm does
            pos.write(plain)
            printed = read_until_cut(master)
        assert printed.startswith(b"\x1b@SHOP\nMilk 89.90\n") and printed.endswith(b"\x1dV\x00")
        assert TITLE.encode() in printed and CARD.encode() not in printed
    finally:
        register.stop()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("fault", ["blackhole", "refuse"])
def test_slow_or_down_processing_never_costs_the_fiscal_receipt(
    tmp_path: Path, sandbox_server: SandboxServer, fault: str
) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    with (
        fault_proxy(sandbox_server.host, sandbox_server.port) as proxy,
        RegistrarEmulator() as emulator,
    ):
        cfg = config(tmp_path, proxy.url, emulator.start_tcp(), os.ttyname(slave))
        [kkt, scan] = cfg.passthrough
        cfg = cfg.model_copy(
            update={"passthrough": [kkt.model_copy(update={"settle_budget": 0.5}), scan]}
        )
        register = Register(cfg)
        register.start()
        try:
            manager = register.passthrough
            assert manager is not None
            proxy.set_fault(fault)
            manager.session.card_presented(CARD, "test")
            printer = pos_registrar(tmp_path / "run" / "kkt")
            started = time.monotonic()
            try:
                sell(printer)
            finally:
                printer.transport.close()
            took = time.monotonic() - started
            [document] = emulator.documents  # closed, and only once
            assert [i["name"] for i in document["items"]] == ["Milk 3.2% 1 l"]
            if fault == "blackhole":  # no lines: the settle ran out of its budget
                assert document["messages"] == [] and took < 0.5 + 3.0, took
                # the relay stops waiting at the same deadline as the session's own wait:
                # the session's count may land a moment after the POS has its answer
                counts = manager.session.counts
                give_up = time.monotonic() + 5.0
                while counts.failed == 0 and time.monotonic() < give_up:
                    threading.Event().wait(0.01)
                assert counts.failed == 1
            else:  # down at once: the journal takes it, the offline notice is printed
                assert "Offline" in " ".join(document["messages"])
        finally:
            register.stop()
            os.close(master)
            os.close(slave)


def test_a_registrar_pass_through_over_tcp(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    master, slave = os.openpty()
    listen = free_port()
    with RegistrarEmulator() as emulator:
        cfg = config(tmp_path, sandbox_server.url, emulator.start_tcp(), os.ttyname(slave))
        [kkt, scan] = cfg.passthrough
        over_tcp = kkt.model_copy(update={"link": None, "listen": f"127.0.0.1:{listen}"})
        cfg = cfg.model_copy(update={"passthrough": [over_tcp, scan]})
        register = Register(cfg)
        register.start()
        try:
            assert register.passthrough is not None
            register.passthrough.session.card_presented(CARD, "test")
            printer = ShtrihFiscalPrinter("pos", TcpTransport("127.0.0.1", listen))
            printer.transport.open()
            try:
                sell(printer)
            finally:
                printer.transport.close()
            [document] = emulator.documents
            assert any(TITLE in line for line in document["messages"])
            assert register.passthrough.status()[0]["port"] == f"tcp 127.0.0.1:{listen}"
        finally:
            register.stop()
            os.close(master)
            os.close(slave)
