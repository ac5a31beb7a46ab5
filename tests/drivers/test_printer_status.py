"""DLE EOT status decoding: every byte pattern, random junk, and a printer behind a real pty."""

from __future__ import annotations

import os
import pty
import select
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.device import Flag, PowerState
from drivers.printer import PrinterStatus, ReceiptPrinter
from drivers.printer.status import Query, decode, is_status_byte
from drivers.transport.serial import SerialTransport

try:
    from tests.drivers.memory_transport import MemoryTransport
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    from memory_transport import MemoryTransport  # type: ignore[no-redef,import-not-found]

T, F, U = Flag.TRUE, Flag.FALSE, Flag.UNKNOWN

# Which flags each query answers (the others must stay UNKNOWN when only it is answered).
OWNED = {
    1: {"online", "drawer_pin3_high"},
    2: {"cover_open", "error", "paper_empty"},
    3: {"recoverable_error", "cutter_error", "unrecoverable_error", "auto_recoverable_error"},
    4: {"paper_empty", "paper_near_end"},
}

TABLE = [  # (n, reply byte, expected flags); layouts from Epson's "DLE EOT" reference
    (1, 0x12, {"online": T, "drawer_pin3_high": F}),
    (1, 0x1A, {"online": F}),
    (1, 0x16, {"online": T, "drawer_pin3_high": T}),
    (1, 0x32, {"online": T}),  # waiting for online recovery: still reported online
    (1, 0x52, {"online": T}),  # feed button pressed
    (2, 0x12, {"cover_open": F, "error": F, "paper_empty": U}),
    (2, 0x16, {"cover_open": T}),
    (2, 0x1A, {"cover_open": F}),  # paper being fed by the button
    (2, 0x32, {"paper_empty": T}),  # printing stopped by paper end
    (2, 0x52, {"error": T}),
    (
        3,
        0x12,
        {
            "recoverable_error": F,
            "cutter_error": F,
            "unrecoverable_error": F,
            "auto_recoverable_error": F,
        },
    ),
    (3, 0x16, {"recoverable_error": T, "cutter_error": F}),
    (3, 0x1A, {"cutter_error": T, "recoverable_error": F}),
    (3, 0x32, {"unrecoverable_error": T}),
    (3, 0x52, {"auto_recoverable_error": T}),
    (4, 0x12, {"paper_empty": F, "paper_near_end": F}),
    (4, 0x1E, {"paper_near_end": T, "paper_empty": F}),
    (4, 0x7E, {"paper_near_end": T, "paper_empty": T}),
    (4, 0x72, {"paper_empty": T, "paper_near_end": F}),
    (4, 0x16, {"paper_near_end": U}),  # one bit of a two-bit sensor: not trusted
    (4, 0x32, {"paper_empty": U}),
]
NOT_STATUS = [0x00, 0xFF, 0x13, 0x92, 0x02, 0x10, 0x7F, 0x80]


@pytest.mark.parametrize(("n", "byte", "expected"), TABLE)
def test_table(n: int, byte: int, expected: dict[str, Flag]) -> None:
    status = decode({n: byte})
    for name, flag in expected.items():
        assert getattr(status, name) is flag, (n, hex(byte), name)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("byte", NOT_STATUS)
def test_bytes_without_the_fixed_bits_are_not_status(n: int, byte: int) -> None:
    assert not is_status_byte(byte)
    assert decode({n: byte}) == PrinterStatus()


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_byte_of_every_query(n: int) -> None:
    for byte in range(256):
        status = decode({n: byte})
        for f in fields(status):
            flag = getattr(status, f.name)
            assert isinstance(flag, Flag)
            if f.name not in OWNED[n] or not is_status_byte(byte):
                assert flag is U, (n, hex(byte), f.name)
        consistent_pair = any(byte & mask in (0, mask) for mask in (0x0C, 0x60))
        assert status.answered is (is_status_byte(byte) and (n != 4 or consistent_pair))


def test_no_reply_is_unknown_never_a_guess() -> None:
    assert decode({}) == PrinterStatus()
    assert decode({1: None, 2: None, 3: None, 4: None}).blocking_reason() is None
    assert decode({1: 0x12}).paper_empty is U


def test_blocking_reasons() -> None:
    assert decode({4: 0x7E}).blocking_reason() == "paper empty"
    assert decode({2: 0x16}).blocking_reason() == "cover open"
    assert decode({1: 0x1A}).blocking_reason() == "printer offline"
    assert decode({1: 0x12, 2: 0x12, 3: 0x12, 4: 0x1E}).blocking_reason() is None  # near end


def test_to_json_is_three_valued() -> None:
    json = decode({1: 0x12}).to_json()
    assert json["online"] is True and json["paper_empty"] is None


@given(st.dictionaries(st.integers(-5, 10), st.one_of(st.none(), st.integers(-300, 300))))
def test_random_replies_never_crash(replies: dict[int, int | None]) -> None:
    status = decode(replies)
    assert all(isinstance(getattr(status, f.name), Flag) for f in fields(status))


@given(st.lists(st.binary(max_size=6), min_size=4, max_size=4))
def test_random_bytes_from_the_wire_never_crash(answers: list[bytes]) -> None:
    replies = {q.command: a for q, a in zip(Query, answers, strict=True)}
    printer = ReceiptPrinter("p", MemoryTransport(replies), status_timeout=0.001)
    printer.open()
    status = printer.status()
    assert all(isinstance(getattr(status, f.name), Flag) for f in fields(status))
    if not answers[0]:
        assert status == PrinterStatus()  # first query unanswered: nothing is guessed


# --- a printer behind a real pty --------------------------------------------------------------


class PtyPrinter:
    """The far end of a pty, answering DLE EOT n through `answer(n)` (None: stay silent)."""

    def __init__(self, answer: Callable[[int], bytes | None]) -> None:
        self.master, slave = pty.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave  # kept open so the pty survives until the test closes it
        self.answer = answer
        self.received = bytearray()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                chunk = os.read(self.master, 1024)
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            while (at := self.received.find(b"\x10\x04")) != -1 and len(self.received) > at + 2:
                n = self.received[at + 2]
                del self.received[: at + 3]
                reply = self.answer(n)
                if reply:
                    os.write(self.master, reply)

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(5)
        for fd in (self.master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass  # closed already


@pytest.fixture
def pty_printer() -> Iterator[Callable[[Callable[[int], bytes | None]], PtyPrinter]]:
    made: list[PtyPrinter] = []

    def make(answer: Callable[[int], bytes | None]) -> PtyPrinter:
        made.append(PtyPrinter(answer))
        return made[-1]

    yield make
    for peer in made:
        peer.close()


def serial_printer(path: str) -> ReceiptPrinter:
    printer = ReceiptPrinter("front", SerialTransport(path), status_timeout=0.2)
    printer.open()
    return printer


def test_status_over_a_pty(pty_printer: Callable[..., PtyPrinter]) -> None:
    replies = {1: b"\x12", 2: b"\x12", 3: b"\x1a", 4: b"\x1e"}
    peer = pty_printer(replies.get)
    printer = serial_printer(peer.path)
    status = printer.status()
    printer.close()
    assert status.online is T and status.cutter_error is T and status.paper_near_end is T
    assert status.paper_empty is F and status.cover_open is F


def test_silent_printer_is_unknown_and_quick(pty_printer: Callable[..., PtyPrinter]) -> None:
    peer = pty_printer(lambda n: None)
    printer = serial_printer(peer.path)
    started = time.monotonic()
    status = printer.status()
    printer.close()
    assert status == PrinterStatus()
    assert time.monotonic() - started < 1.5  # one timeout, not four


def test_stale_bytes_are_not_taken_for_an_answer(pty_printer: Callable[..., PtyPrinter]) -> None:
    peer = pty_printer({1: b"\x1a", 2: b"\x12", 3: b"\x12", 4: b"\x12"}.get)
    printer = serial_printer(peer.path)
    os.write(peer.master, b"\x12\x12\x12\x12")  # e.g. an ASB frame or a late reply
    assert printer.transport.read(1, timeout=2.0) == b"\x12"  # the junk has arrived
    assert printer.status().online is F
    printer.close()


def test_vanished_pty_gives_unknown_and_offline(pty_printer: Callable[..., PtyPrinter]) -> None:
    peer = pty_printer({1: b"\x12"}.get)
    printer = serial_printer(peer.path)
    peer.close()  # the master side goes away, as when a USB-serial printer is unplugged
    assert printer.status() == PrinterStatus()
    assert printer.power is PowerState.OFFLINE
