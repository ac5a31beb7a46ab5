"""The registrar relay's test rig: the real emulator (recording what it executes), the relay's
virtual pty in front of it, a raw POS script, and a small stand-in for the session.

The POS script frames bytes by hand (tests/sandbox/registrar/wire.py: neither the
driver's framing nor the emulator's), as an unmodified POS would.  The emulator's clock is
frozen so a direct run and a run through the relay print the same paper to the byte.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.config import parse
from bridge.passthrough.matching import CatalogIndex
from bridge.passthrough.registrar import RegistrarRelay, RegistrarSession
from bridge.passthrough.session import PassthroughSession, Settled, SoldItem
from bridge.service.cheque import Line
from bridge.service.register import Register
from drivers.transport.base import Transport
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport
from drivers.virtual_port import PtyPort, TcpListenPort
from sandbox.registrar import RegistrarEmulator
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port
from tests.sandbox.registrar.wire import Answer, RawHost, cmd, le, sale_v2, text_field

FROZEN = datetime(2026, 12, 2, 12, 0, 0)
BLOCK = ["Карта 4000...0002", "Начислено бонусов: 18", "Баланс: 118"]


def emulator(**options: Any) -> tuple[RegistrarEmulator, list[tuple[int, bytes]]]:
    """A fresh emulator with a frozen clock, and the list of (command, data) it executes."""
    emu = RegistrarEmulator(**options)
    executed: list[tuple[int, bytes]] = []
    run = emu.device.execute

    def recording(code: int, data: bytes) -> bytes:
        executed.append((code, data))
        return run(code, data)

    emu.device.execute = recording  # type: ignore[method-assign]
    emu.device.stamp = lambda: FROZEN  # type: ignore[method-assign]
    return emu, executed


@dataclass
class StubSession:
    """The session's surface the relay uses, answering fixed lines.

    `hold` makes settle block until `release` is set (a slow processing, without sleeping);
    `error` makes it raise.
    """

    card: str | None = None
    lines: Sequence[str] = tuple(BLOCK)
    hold: bool = False
    error: Exception | None = None
    reason: str = "online"
    calls: list[tuple[str, list[SoldItem], int, float]] = field(default_factory=list)
    opened: int = 0
    barcodes: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    settling: threading.Event = field(default_factory=threading.Event)
    returned: threading.Event = field(default_factory=threading.Event)
    voided: list[Settled] = field(default_factory=list)

    def card_presented(self, number: str, source: str) -> None:
        self.card = number

    def barcode_scanned(self, code: str) -> None:
        self.barcodes.append(code)

    def barcode_for_item(self) -> str | None:
        return self.barcodes.pop() if self.barcodes else None

    def take_card(self) -> str | None:
        card, self.card = self.card, None
        return card

    def receipt_opened(self) -> None:
        self.opened += 1

    def settle(
        self, card: str, items: Sequence[SoldItem], *, width: int, deadline: float
    ) -> Settled:
        self.calls.append((card, list(items), width, deadline))
        self.settling.set()
        try:
            if self.hold:
                self.release.wait(30)
            if self.error is not None:
                raise self.error
            confirmed: Future[Any] = Future()
            confirmed.set_result("cheque")
            return Settled(list(self.lines), self.reason, confirmed)
        finally:
            self.returned.set()

    def void(self, settled: Settled) -> None:
        self.voided.append(settled)


def device_transport(emu: RegistrarEmulator, kind: str) -> Transport:
    if kind == "tcp":
        return TcpTransport("127.0.0.1", emu.start_tcp())
    return SerialTransport(emu.start_pty())


@contextmanager
def relayed(
    emu: RegistrarEmulator,
    session: RegistrarSession,
    *,
    device: str = "pty",
    pos: str = "pty",
    **options: Any,
) -> Iterator[tuple[RawHost, RegistrarRelay]]:
    """The relay between a raw POS (on the virtual pty, or its TCP port) and the emulator."""
    port: PtyPort | TcpListenPort
    port = PtyPort(None, "kkt-virtual") if pos == "pty" else TcpListenPort("127.0.0.1", 0, "kkt")
    relay = RegistrarRelay(
        port, device_transport(emu, device), session, name="kkt", **options
    ).start()
    if isinstance(port, PtyPort):
        host = RawHost.open_pty(port.slave_path)
    else:
        host = RawHost.connect(port.bound_port)
    try:
        yield host, relay
    finally:
        host.close()
        relay.stop()


@contextmanager
def direct(emu: RegistrarEmulator) -> Iterator[RawHost]:
    pos = RawHost.open_pty(emu.start_pty())
    try:
        yield pos
    finally:
        pos.close()


# the POS's receipts, frame by frame -------------------------------------------------------


def sale_80(name: str, thousandths: int, price: int, password: int = 30) -> bytes:
    data = le(thousandths, 5) + le(price, 5) + bytes([1, 1, 0, 0, 0]) + text_field(name)
    return cmd(0x80, data, password)


def close_85(cash: int, password: int = 30) -> bytes:
    return cmd(0x85, le(cash, 5) + bytes(15) + b"\0\0" + bytes(4) + text_field(""), password)


def close_ff45(cash: int, password: int = 30) -> bytes:
    payments = le(cash, 5) + bytes(5 * 15)
    return cmd(0xFF45, payments + b"\x00" + bytes(5 * 6) + bytes([1]), password)


def receipt_v1(own_line: bool = True, password: int = 30) -> list[bytes]:
    """The pre-FN way: status, open, two sales, status polling, a line of its own, close."""
    frames = [
        cmd(0x10, password=password),
        cmd(0x8D, bytes([0]), password),
        sale_80("Молоко", 2000, 8990, password),
        cmd(0x10, password=password),
        sale_80("Хлеб", 1500, 4550, password),
    ]
    if own_line:
        frames.append(cmd(0x17, bytes([2]) + text_field("Спасибо за покупку!"), password))
    frames += [close_85(30000, password), cmd(0x10, password=password)]
    return frames


def receipt_v2() -> list[bytes]:
    """The FN way: 0xFF46 lines open the receipt themselves, 0xFF45 closes it."""
    return [
        cmd(0xFC, password=None),
        sale_v2("Кефир 1%", 3_000_000, 7900),
        sale_v2("Сыр Российский", 250_000, 89900, 22475),
        close_ff45(50000),
        cmd(0xFF01),
    ]


def play(pos: RawHost, frames: Sequence[bytes]) -> list[Answer]:
    return [pos.call(frame) for frame in frames]


# the real session: a register in front of the processing sandbox ----------------------------

CARD = "2775000000012"
TITLE = "LOYALTY PROGRAM"  # the block's title in English
OFFLINE = "Offline: bonuses will be accrued"
CATALOG = (
    "goodsId,barcode,name,price\n1001,4600000000015,Milk 3.2% 1 l,89.90\n5001,,Dish soap,150.00\n"
)


def make_register(tmp_path: Path, url: str) -> Register:
    config = parse(
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
    register = Register(config, devices=False)
    register.start()
    return register


def make_session(tmp_path: Path, url: str) -> PassthroughSession:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    index = CatalogIndex(catalog)
    index.load()
    return PassthroughSession(make_register(tmp_path, url), make_line=Line, catalog=index)
