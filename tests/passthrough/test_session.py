"""PassthroughSession against the real register and the real processing sandbox (through a
fault proxy for slow, down and erroring processing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.config import parse
from bridge.passthrough.matching import CatalogIndex, unmatched_id
from bridge.passthrough.session import PassthroughSession, SoldItem, read_stats
from bridge.service.cheque import Line
from bridge.service.register import Register
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD, admin
from tests.fault_proxy import FaultProxy, fault_proxy
from tests.net import free_port

CARD = "2775000000012"
TITLE = "LOYALTY PROGRAM"
OFFLINE = "Offline: bonuses will be accrued"
CATALOG = (
    "goodsId,barcode,name,price\n"
    "1001,4600000000015,Milk 3.2% 1 l,89.90\n"
    "5001,,Dish soap,150.00\n"
    "7001,4600000000022,Rye bread sliced 500 g,45.00\n"
    "7002,4600000000039,Rye bread sliced 300 g,35.00\n"
)
MILK = SoldItem("Milk 3.2% 1 l", Decimal("2"), Decimal("89.90"), Decimal("179.80"))
SOAP = SoldItem("DISH  soap", Decimal("1"), Decimal("150.00"), Decimal("150.00"))
MYSTERY = SoldItem("Mystery box", Decimal("1.000000"), Decimal("10.00"), Decimal("10.00"))


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


def make_register(tmp_path: Path, url: str) -> Register:
    cfg = parse(
        {
            "processing": {
                "url": url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
                "read_timeout": 5.0,
                "deadline": 5.0,
            },
            "journal": {
                "path": str(tmp_path / "journal.sqlite"),
                "probe_min_seconds": 30,
                "probe_max_seconds": 60,
            },
            "api": {"port": free_port(), "token": "test-token-0123456789"},
            "receipt": {"language": "en"},
        }
    )
    register = Register(cfg, devices=False)
    register.start()
    return register


@pytest.fixture
def register(tmp_path: Path, proxy: FaultProxy) -> Iterator[Register]:
    reg = make_register(tmp_path, proxy.url)
    yield reg
    reg.stop()


@pytest.fixture
def session(tmp_path: Path, register: Register) -> PassthroughSession:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    index = CatalogIndex(catalog)
    index.load()
    return PassthroughSession(register, catalog=index, stats_path=tmp_path / "stats.json")


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def test_online_receipt_settles_with_the_block_and_matched_lines(
    session: PassthroughSession, register: Register, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    session.receipt_opened()
    session.card_presented(CARD, "scanner-relay")
    session.barcode_scanned("4600000000015")
    card = session.take_card()
    assert card == CARD and session.take_card() is None  # handed out once
    settled = session.settle(card, [MILK, SOAP, MYSTERY], width=36, deadline=soon())
    assert settled.reason == "online", settled
    text = "\n".join(settled.lines)
    assert TITLE in text and "Bonuses accrued" in text
    assert CARD not in text and "27*******0012" in text
    assert all(len(line) <= 36 for line in settled.lines)
    [cheque] = [c for c in register.book._closed.values()]
    assert cheque.state == "confirmed" and cheque.card == CARD
    assert [ln.goods_id for ln in cheque.lines] == ["1001", "5001", unmatched_id("Mystery box")]
    assert cheque.lines[0].barcode == "4600000000015"  # matched by the scan before it
    assert cheque.lines[2].quantity == Decimal("1.000")
    assert cheque.accrued is not None and cheque.accrued > 0
    # processing booked it: the purchase is confirmed there
    purchase = admin(sandbox_server, f"purchases/{cheque.purchase.purchase_id}")  # type: ignore[union-attr]
    assert purchase["status"] == "confirmed"
    assert session.counts.unmatched == 1 and session.counts.items == 3
    stats = read_stats(tmp_path / "stats.json")
    assert stats is not None and stats["unmatched"] == 1
    assert stats["lastUnmatched"] == ["Mystery box"] and stats["settledOnline"] == 1


def test_no_card_is_left_untouched(session: PassthroughSession, register: Register) -> None:
    assert session.take_card() is None
    settled = session.settle("", [MILK], width=32, deadline=soon())
    assert settled.lines == [] and settled.reason == "no_card"
    assert register.book.open_count() == 0 and not register.book._closed


def test_offline_goes_through_the_journal_with_the_notice(
    session: PassthroughSession, register: Register, proxy: FaultProxy
) -> None:
    proxy.set_fault("refuse")
    settled = session.settle(CARD, [MILK], width=40, deadline=soon())
    assert settled.reason == "offline", settled
    assert OFFLINE in " ".join(" ".join(settled.lines).split())
    assert register.offline.journal.counts().pending >= 1  # the confirm waits to be sent


@pytest.mark.parametrize("fault", ["blackhole", "stall"])
def test_slow_processing_never_holds_the_close_past_the_deadline(
    session: PassthroughSession, register: Register, proxy: FaultProxy, fault: str
) -> None:
    proxy.set_fault(fault)
    started = time.monotonic()
    settled = session.settle(CARD, [MILK], width=32, deadline=started + 0.5)
    took = time.monotonic() - started
    assert settled.lines == [] and settled.reason.startswith("failed: processing did not settle")
    assert took < 0.5 + 2.0, took  # the deadline, plus slack for two loaded cores
    assert session.counts.failed == 1


@pytest.mark.parametrize("fault", ["garbage", "status"])
def test_processing_errors_go_to_the_journal(
    session: PassthroughSession, register: Register, proxy: FaultProxy, fault: str
) -> None:
    proxy.set_fault(fault)  # an answer off the contract or an HTTP 500: processing is down
    settled = session.settle(CARD, [MILK], width=32, deadline=soon())
    assert settled.reason == "offline", settled
    assert OFFLINE in " ".join(" ".join(settled.lines).split())
    assert register.offline.journal.counts().pending >= 1


def test_a_card_processing_refuses_fails_open(
    session: PassthroughSession, register: Register
) -> None:
    settled = session.settle("9999999999999999", [MILK], width=32, deadline=soon())
    assert settled.lines == [] and settled.reason.startswith("failed: processing refused")
    assert "9999999999999999" not in settled.reason
    assert register.book.open_count() == 0  # cancelled: nothing left open holding anything


def test_items_the_contract_cannot_take_are_not_sent(session: PassthroughSession) -> None:
    zero = SoldItem("Nothing", Decimal("0"), Decimal("1"), Decimal("0"))
    settled = session.settle(CARD, [zero], width=32, deadline=soon())
    assert settled.lines == [] and settled.reason.startswith("failed: no item")


def test_name_prefix_and_ambiguity(session: PassthroughSession) -> None:
    truncated = SoldItem("Milk 3.2% 1 ", Decimal(1), Decimal(1), Decimal(1))
    ambiguous = SoldItem("Rye bread sliced", Decimal(1), Decimal(1), Decimal(1))
    assert session.match(truncated, []).goods_id == "1001"
    assert session.match(truncated, []).how == "prefix"
    assert not session.match(ambiguous, []).matched
    # a scan in the receipt settles which of the two it was
    scans = ["4600000000039"]
    found = session.match(ambiguous, scans)
    assert (found.goods_id, found.how, scans) == ("7002", "scan", [])
    by_code = SoldItem("whatever", Decimal(1), Decimal(1), Decimal(1), barcode="4600000000022")
    assert session.match(by_code, []).goods_id == "7001"
    gtin14 = SoldItem("whatever", Decimal(1), Decimal(1), Decimal(1), barcode="04600000000022")
    assert session.match(gtin14, []).goods_id == "7001"  # the same product's GTIN-14


def test_pushed_state_limits_the_catalogue(tmp_path: Path) -> None:
    import sqlite3

    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    state = tmp_path / "catalog-state.sqlite"
    with sqlite3.connect(state) as conn:
        conn.execute("CREATE TABLE pushed (goods_id TEXT PRIMARY KEY, hash BLOB, pushed_at TEXT)")
        conn.execute("INSERT INTO pushed VALUES ('5001', x'00', 'now')")
    conn.close()
    index = CatalogIndex(catalog, state)
    index.load()
    assert index.size == 1
    assert index.by_name("dish soap") == ("5001", "name")
    assert index.by_barcode("4600000000015") is None  # never accepted by processing


def test_a_broken_catalogue_is_reported_not_raised(tmp_path: Path) -> None:
    index = CatalogIndex(tmp_path / "missing.csv")
    index.load()
    assert index.error is not None and "missing.csv" in index.error
    assert index.by_name("anything at all") is None


def test_receipt_opened_forgets_scans_and_keeps_the_card(session: PassthroughSession) -> None:
    session.card_presented(CARD, "msr")
    session.barcode_scanned("4600000000015")
    assert session.barcode_for_item() == "4600000000015"
    assert session.barcode_for_item() is None
    session.barcode_scanned("4600000000022")
    session.receipt_opened()
    assert session.barcode_for_item() is None
    assert session.pending_card() == "27*******0012"
    assert session.take_card() == CARD


def test_a_stale_card_is_not_used(register: Register) -> None:
    now = [100.0]
    session = PassthroughSession(register, card_ttl=60, clock=lambda: now[0])
    session.card_presented(CARD, "msr")
    now[0] += 61
    assert session.take_card() is None


def test_recent_block_by_number_then_window_each_once(
    register: Register, session: PassthroughSession
) -> None:
    now = [1000.0]
    session.clock = lambda: now[0]
    book = register.book

    def confirmed(number: str) -> None:
        cheque = book.open(number, CARD, [Line("1001", "Milk", Decimal(1), Decimal(1), Decimal(1))])
        book.calculate(cheque)
        book.confirm(cheque)
        session.cheque_confirmed(cheque)  # what Register.publish_cheque does with a manager

    confirmed("A-1")
    now[0] += 1
    confirmed("A-2")
    first = session.recent_block("A-1", width=32, window=5)
    assert first is not None and TITLE in "\n".join(first)
    newest = session.recent_block(None, width=32, window=5)
    assert newest is not None
    assert session.recent_block(None, width=32, window=5) is None  # handed out once
    confirmed("A-3")
    now[0] += 10
    assert session.recent_block(None, width=32, window=5) is None  # out of the window
    # a cheque settled by the registrar relay was printed there: never handed to a printer
    assert session.settle(CARD, [MILK], width=32, deadline=soon()).reason == "online"
    [settled] = [c for c in book._closed.values() if c.number not in ("A-1", "A-2", "A-3")]
    session.cheque_confirmed(settled)
    assert session.recent_block(settled.number, width=32, window=0) is None
