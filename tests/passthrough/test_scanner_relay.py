"""The scanner pass-through over real ptys: a scanner's pty behind a by-id style symlink,
the POS's virtual port (`PtyPort`) opened with pyserial the way an unmodified POS opens it.

Absence (a card not passed on) is checked by order, never by waiting: the relay keeps the
scanner's order, so a product scanned after the card is the first thing the POS reads.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import serial

from bridge.barcodes import BarcodeSettings, LoyaltyRule
from bridge.config import parse
from bridge.passthrough import scanner as scanner_module
from bridge.passthrough.matching import CatalogIndex
from bridge.passthrough.scanner import CARD_SOURCE, ScannerRelay
from bridge.passthrough.session import PassthroughSession, SoldItem
from bridge.service.register import Register
from drivers.device import PowerState
from drivers.reconnect import Backoff
from drivers.transport.base import Transport, TransportClosed, TransportError
from drivers.transport.serial import SerialTransport
from drivers.virtual_port import PtyPort, TcpListenPort
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.drivers.pty_helpers import Pty
from tests.net import free_port

CARD = "2775000000012"  # the default loyalty range: 2775, 13 digits, EAN check digit
LUHN_CARD = "4111111111111111"  # a bank-card-like loyalty range: masked in every log line
PRODUCTS = [
    b"]E04006381333931",
    b"]d201046040600060002131\x1d93abcd",  # a marking code: GS inside, passed as is
    b"2212345012343",  # a weight item
    b"4006381333931",
    b"]E001234565",
]
BARCODES = BarcodeSettings(
    loyalty=[
        LoyaltyRule(prefix="2775", length=13, check="ean"),
        LoyaltyRule(prefix="4", length=16, check="luhn"),
    ]
)


@dataclass
class Session:
    """Records what the relay tells the register; waits without sleeping."""

    cards: list[tuple[str, str]] = field(default_factory=list)
    barcodes: list[str] = field(default_factory=list)
    fail: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def card_presented(self, number: str, source: str) -> None:
        if self.fail:
            raise RuntimeError(f"register busy with card {number}")
        with self.cond:
            self.cards.append((number, source))
            self.cond.notify_all()

    def barcode_scanned(self, code: str) -> None:
        with self.cond:
            self.barcodes.append(code)
            self.cond.notify_all()

    def wait(self, ready: Callable[[], bool]) -> None:
        with self.cond:
            assert self.cond.wait_for(ready, 5), (self.cards, self.barcodes)


class Status:
    """The relay's online/offline reports, waited on without sleeping."""

    def __init__(self) -> None:
        self.seen: list[PowerState] = []
        self.cond = threading.Condition()

    def __call__(self, power: PowerState, reason: str) -> None:
        with self.cond:
            self.seen.append(power)
            self.cond.notify_all()

    def wait(self, power: PowerState, count: int = 1) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.seen.count(power) >= count, 5), self.seen


@dataclass
class Rig:
    relay: ScannerRelay
    scanner: Pty
    scanner_link: Path
    pos: serial.Serial
    session: Session
    status: Status

    def read_pos(self, size: int, timeout: float = 5.0) -> bytes:
        """Exactly `size` bytes from the POS end, or what came before `timeout`."""
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < size and time.monotonic() < deadline:
            got += self.pos.read(size - len(got))
        return got


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[tuple[ScannerRelay, Pty, serial.Serial]] = []

    def make(
        suffix: bytes | None = b"\r",
        session: Session | PassthroughSession | None = None,
        **kw: object,
    ) -> Rig:
        scanner = Pty()
        scanner_link = tmp_path / "scanner-by-id"
        scanner_link.symlink_to(scanner.path)
        pos_port = PtyPort(tmp_path / "run" / "scanner", "scanner")
        status = Status()
        relay = ScannerRelay(
            pos_port,
            SerialTransport(str(scanner_link)),
            session or Session(),
            suffix=suffix,
            barcodes=BARCODES,
            on_status=status,
            backoff=Backoff(initial=0.05, maximum=0.2),
            **kw,  # type: ignore[arg-type]
        )
        relay.start()
        status.wait(PowerState.ONLINE)
        pos = serial.Serial(str(tmp_path / "run" / "scanner"), timeout=0.2)
        made.append((relay, scanner, pos))
        recorded = relay.session if isinstance(relay.session, Session) else Session()
        return Rig(relay, scanner, scanner_link, pos, recorded, status)

    yield make
    for relay, scanner, pos in made:
        pos.close()
        relay.stop()
        scanner.unplug()


def test_scans_the_pos_leaves_unread_are_dropped_not_handed_over_late(
    make_rig: Callable[..., Rig],
) -> None:
    """A POS that is down or keeps its port closed must not ring up, when it opens, the
    products scanned meanwhile: a real port it keeps closed loses them too."""
    rig = make_rig(unread_timeout=0.3)
    old = PRODUCTS[0] + b"\r"
    rig.scanner.send(old)  # the POS reads nothing for a while
    tick = threading.Event()
    deadline = time.monotonic() + 5
    while rig.relay.counters["stale_dropped"] == 0 and time.monotonic() < deadline:
        tick.wait(0.05)  # polling the relay's counter; it publishes no event
    assert rig.relay.counters["stale_dropped"] == len(old)
    assert rig.relay.counters["scans"] == 1  # it was relayed, then left unread
    new = PRODUCTS[1] + b"\r"
    rig.scanner.send(new)
    assert rig.read_pos(len(new)) == new  # only the fresh scan
    assert rig.pos.read(64) == b""


def test_product_scans_reach_the_pos_byte_for_byte_with_their_suffix(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(suffix=b"\r\n", idle_timeout=5.0)  # a split scan is never cut, however slow
    sent = b"".join(code + b"\r\n" for code in PRODUCTS)
    rig.scanner.send(PRODUCTS[0] + b"\r\n")  # one scan alone
    rig.scanner.send(b"".join(code + b"\r\n" for code in PRODUCTS[1:3]))  # glued in one read
    rig.scanner.send(PRODUCTS[3][:5])  # split across writes, and a suffix split too
    rig.scanner.send(PRODUCTS[3][5:] + b"\r")
    rig.scanner.send(b"\n" + PRODUCTS[4] + b"\r\n")

    assert rig.read_pos(len(sent)) == sent
    rig.session.wait(lambda: len(rig.session.barcodes) == len(PRODUCTS))
    assert rig.session.barcodes[0] == "4006381333931"  # the AIM identifier is not the code
    assert rig.session.barcodes[1] == "01046040600060002131\x1d93abcd"  # GS kept
    assert rig.session.cards == []
    counts = rig.relay.counters
    assert counts["scans"] == len(PRODUCTS)
    assert counts["cards"] == counts["half_scans"] == counts["failures"] == 0


def test_a_card_is_captured_for_the_cheque_and_not_passed_on(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="posbridge")
    rig = make_rig()
    rig.scanner.send(LUHN_CARD.encode() + b"\r" + CARD.encode() + b"\r" + PRODUCTS[0] + b"\r")

    # the product scanned after both cards is the first thing the POS sees
    assert rig.read_pos(len(PRODUCTS[0]) + 1) == PRODUCTS[0] + b"\r"
    rig.session.wait(lambda: len(rig.session.cards) == 2)
    assert rig.session.cards == [(LUHN_CARD, CARD_SOURCE), (CARD, CARD_SOURCE)]
    assert rig.session.barcodes == ["4006381333931"]
    counts = rig.relay.counters
    assert (counts["cards"], counts["cards_passed"], counts["scans"]) == (2, 0, 1)
    assert LUHN_CARD not in caplog.text and CARD not in caplog.text
    assert "4111********1111" in caplog.text  # masked: the cashier can still compare


def test_with_pass_cards_the_card_reaches_the_pos_too(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(pass_cards=True)
    sent = CARD.encode() + b"\r" + PRODUCTS[0] + b"\r"
    rig.scanner.send(sent)

    assert rig.read_pos(len(sent)) == sent
    rig.session.wait(lambda: len(rig.session.cards) == 1)
    assert rig.session.cards == [(CARD, CARD_SOURCE)]
    counts = rig.relay.counters
    assert (counts["cards"], counts["cards_passed"]) == (1, 1)


def test_a_half_scan_passes_unchanged_after_the_idle_timeout(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(idle_timeout=0.05)
    rig.scanner.send(CARD.encode()[:9])  # the suffix never comes

    assert rig.read_pos(9) == CARD.encode()[:9]
    rig.scanner.send(PRODUCTS[0] + b"\r")  # and the next scan is not glued to it
    assert rig.read_pos(len(PRODUCTS[0]) + 1) == PRODUCTS[0] + b"\r"
    rig.session.wait(lambda: len(rig.session.barcodes) == 1)
    assert rig.session.cards == []
    counts = rig.relay.counters
    assert (counts["half_scans"], counts["scans"]) == (1, 1)


def test_garbage_and_a_crlf_scanner_set_up_as_cr_pass_byte_for_byte(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(suffix=b"\r", idle_timeout=0.05)
    # the framer drops the LF of a CRLF scanner on a CR setting; the POS must still get it
    sent = b"hello world\r\n" + PRODUCTS[3] + b"\r\n" + b"\x00\x01\xff\r\n"
    rig.scanner.send(sent)

    assert rig.read_pos(len(sent)) == sent
    rig.session.wait(lambda: len(rig.session.barcodes) == 1)
    counts = rig.relay.counters
    assert (counts["unrecognised"], counts["scans"]) == (2, 1)


def test_a_card_whose_sorting_fails_passes_on(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raw: str, settings: BarcodeSettings | None = None) -> None:
        raise RuntimeError(f"rules broken for {raw}")

    rig = make_rig()
    monkeypatch.setattr(scanner_module, "classify", broken)
    sent = CARD.encode() + b"\r" + PRODUCTS[0] + b"\r"
    rig.scanner.send(sent)

    assert rig.read_pos(len(sent)) == sent  # fail open: the POS gets everything
    assert rig.session.cards == []
    assert rig.relay.counters["failures"] == 2


def test_a_card_the_session_refuses_passes_on(
    make_rig: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.session.fail = True
    sent = LUHN_CARD.encode() + b"\r" + CARD.encode() + b"\r"
    rig.scanner.send(sent)

    assert rig.read_pos(len(sent)) == sent
    assert rig.relay.counters["failures"] == 2
    assert rig.relay.counters["cards"] == 0
    # not even in the session's own error message, Luhn-valid or not
    assert LUHN_CARD not in caplog.text and CARD not in caplog.text
    assert "27*******0012" in caplog.text


def test_the_pos_writes_reach_the_scanner(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.pos.write(b"\x16T\r")  # a trigger command, as a POS sends it to a serial scanner

    assert rig.scanner.recv(3) == b"\x16T\r"


def test_a_pos_on_tcp_gets_the_same_bytes(tmp_path: Path) -> None:
    scanner = Pty()
    session, status = Session(), Status()
    relay = ScannerRelay(
        TcpListenPort("127.0.0.1", 0, "scanner-tcp"),
        SerialTransport(scanner.path),
        session,
        suffix=b"\r",
        barcodes=BARCODES,
        on_status=status,
    )
    relay.start()
    try:
        status.wait(PowerState.ONLINE)
        port = relay.pos
        assert isinstance(port, TcpListenPort)
        with socket.create_connection(("127.0.0.1", port.bound_port), timeout=5) as pos:
            pos.sendall(b"\x16T\r")  # once the scanner hears it, the POS is connected
            assert scanner.recv(3) == b"\x16T\r"
            scanner.send(LUHN_CARD.encode() + b"\r" + PRODUCTS[1] + b"\r")
            got = b""
            while len(got) < len(PRODUCTS[1]) + 1:
                chunk = pos.recv(4096)
                assert chunk, got
                got += chunk
            assert got == PRODUCTS[1] + b"\r"
        session.wait(lambda: len(session.cards) == 1)
    finally:
        relay.stop()
        scanner.unplug()


class UnpluggedMidScan(Transport):
    """Half a scan, then the device is gone: the one fault a pty cannot time on demand."""

    name = "unplugged-mid-scan"

    def __init__(self) -> None:
        self.reads: list[bytes | Exception] = [
            b"46000",
            TransportClosed("unplugged-mid-scan: device gone"),
        ]
        self._open = False

    def open(self) -> None:
        if not self.reads:
            raise TransportError("unplugged-mid-scan: no such device")
        self._open = True

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        step = self.reads.pop(0)
        if isinstance(step, Exception):
            self._open = False
            raise step
        return step

    def write(self, data: bytes) -> None:
        raise TransportClosed("unplugged-mid-scan: read only")

    def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open


def test_half_a_scan_cut_by_an_unplug_reaches_the_pos(tmp_path: Path) -> None:
    session, status = Session(), Status()
    device = UnpluggedMidScan()
    relay = ScannerRelay(
        PtyPort(None, "scanner"),
        device,
        session,
        suffix=b"\r",
        idle_timeout=30.0,  # only the unplug can end this scan
        on_status=status,
        backoff=Backoff(initial=5.0, maximum=5.0),
    )
    port = relay.pos
    assert isinstance(port, PtyPort)
    pos = serial.Serial(port.slave_path, timeout=5)
    relay.start()
    try:
        status.wait(PowerState.OFFLINE)
        assert pos.read(5) == b"46000"
        counts = relay.counters
        assert (counts["half_scans"], counts["offline"], counts["scans"]) == (1, 1, 0)
    finally:
        pos.close()
        relay.stop()


def test_a_scanner_that_vanishes_goes_offline_and_comes_back(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.scanner.send(PRODUCTS[0] + b"\r")
    assert rig.read_pos(len(PRODUCTS[0]) + 1) == PRODUCTS[0] + b"\r"

    rig.scanner.unplug()  # what a pulled USB-serial adapter looks like
    rig.status.wait(PowerState.OFFLINE)
    assert not rig.relay.online
    replugged = Pty()
    try:
        tmp_link = rig.scanner_link.with_name("new-link")
        tmp_link.symlink_to(replugged.path)
        os.replace(tmp_link, rig.scanner_link)  # udev points by-id at the new node
        rig.relay.reconnect_now()
        rig.status.wait(PowerState.ONLINE, count=2)

        sent = CARD.encode() + b"\r" + PRODUCTS[1] + b"\r"
        replugged.send(sent)
        # the POS kept its port open the whole time and reads on as if nothing happened
        assert rig.read_pos(len(PRODUCTS[1]) + 1) == PRODUCTS[1] + b"\r"
        rig.session.wait(lambda: len(rig.session.cards) == 1)
        assert rig.relay.counters["offline"] == 1
        assert rig.relay.online
    finally:
        rig.relay.stop()
        replugged.unplug()


def test_with_the_real_session_the_scan_before_an_item_matches_it_and_the_card_settles(
    make_rig: Callable[..., Rig], sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    config = parse(
        {
            "processing": {
                "url": sandbox_server.url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
                "deadline": 5.0,
            },
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "api": {"port": free_port(), "token": "test-token-0123456789"},
            "receipt": {"language": "en"},
        }
    )
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("goodsId,barcode,name,price\n1001,4600000000015,Milk 1 l,89.90\n")
    index = CatalogIndex(catalog)
    index.load()
    register = Register(config, devices=False)
    register.start()
    try:
        session = PassthroughSession(register, catalog=index)
        rig = make_rig(session=session)
        rig.scanner.send(CARD.encode() + b"\r4600000000015\r")
        # what the POS reads is the product only; by then the session holds both
        assert rig.read_pos(14) == b"4600000000015\r"
        card = session.take_card()
        assert card == CARD
        # the item as the registrar relay sees it: a name, no barcode; the scan identifies it
        sold = SoldItem("MILK 1 L", Decimal("1"), Decimal("89.90"), Decimal("89.90"))
        settled = session.settle(card, [sold], width=32, deadline=time.monotonic() + 10)
        assert settled.reason == "online", settled
        [cheque] = register.book._closed.values()
        assert cheque.card == CARD
        assert cheque.lines[0].barcode == "4600000000015"  # matched by the relayed scan
        assert cheque.lines[0].goods_id == "1001"
    finally:
        register.stop()
