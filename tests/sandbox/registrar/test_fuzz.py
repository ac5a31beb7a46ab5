"""Any bytes at all: the emulator answers every command with a well-formed refusal or
result, and its link survives any stream; an emulator bug would be logged at ERROR."""

from __future__ import annotations

import logging
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.registrar import RegistrarEmulator
from sandbox.registrar.commands import HANDLERS
from sandbox.registrar.faults import FaultBook
from sandbox.registrar.link import LinkSession
from tests.sandbox.registrar.wire import ENQ, NAK, RawHost, cmd, frame

CODES = sorted(HANDLERS)


@settings(max_examples=400)
@given(code=st.sampled_from(CODES), data=st.binary(max_size=200), opened=st.booleans())
def test_any_request_gets_a_well_formed_answer(code: int, data: bytes, opened: bool) -> None:
    emu = RegistrarEmulator()
    if opened:
        emu.device.execute(0x8D, cmd(0x8D, b"\x00")[1:])
    answer = emu.device.execute(code, (30).to_bytes(4, "little") + data)
    head = bytes([0xFF, code & 0xFF]) if code > 0xFF else bytes([code])
    assert answer.startswith(head)
    assert len(answer) <= 255
    assert answer[len(head)] in (0x00, 0x08, 0x14, 0x33, 0x45, 0x4E, 0x58, 0x6B, 0x73, 0x8E)


@settings(max_examples=400)
@given(code=st.integers(0, 0xFFFF), data=st.binary(max_size=60))
def test_unknown_codes_are_refused_not_crashed(code: int, data: bytes) -> None:
    emu = RegistrarEmulator()
    answer = emu.device.execute(code, data)
    error = answer[2] if code > 0xFF else answer[1]
    assert code in HANDLERS or error == 0x37


class _Script:
    """A channel that replays given bytes, then reports the peer gone."""

    def __init__(self, data: bytes) -> None:
        self._chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
        self.written = bytearray()

    def read(self, timeout: float | None) -> bytes | None:
        return self._chunks.pop(0) if self._chunks else None

    def write(self, data: bytes) -> None:
        self.written += data


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_frames = st.builds(
    lambda code, data: frame(cmd(code, data)), st.sampled_from(CODES), st.binary(max_size=80)
)
_pieces = st.one_of(_frames, st.binary(max_size=20), st.sampled_from([b"\x05", b"\x06", b"\x15"]))


@settings(max_examples=300)
@given(stream=st.one_of(st.binary(max_size=400), st.lists(_pieces, max_size=12).map(b"".join)))
def test_link_survives_any_byte_stream(stream: bytes) -> None:
    emu = RegistrarEmulator()
    channel = _Script(stream)
    errors = _Errors()
    logger = logging.getLogger("posbridge.sandbox.registrar")
    logger.addHandler(errors)
    try:
        LinkSession(channel, emu.device.execute, FaultBook(), byte_timeout=0, ack_timeout=0).run()
    finally:
        logger.removeHandler(errors)
    assert not errors.records


def test_line_noise_then_a_good_exchange_over_a_pty(pty_host: RawHost) -> None:
    pty_host.write(bytes(range(0x07, 0x20)) + b"\xff\xfe\x15\x06")  # noise, no STX or ENQ
    assert pty_host.enq() == NAK
    assert pty_host.call(cmd(0x10)).error == 0
    assert threading.active_count() > 1
    pty_host.write(bytes([ENQ]))
    assert pty_host.byte() == NAK
