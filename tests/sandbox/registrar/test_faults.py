"""Every fault kind, seen on the wire exactly as a driver would meet it."""

from __future__ import annotations

import pytest

from sandbox.registrar import Fault, FaultKind, FaultSpecError, RegistrarEmulator
from tests.sandbox.registrar.wire import (
    ACK,
    ENQ,
    NAK,
    RawHost,
    close_v2,
    cmd,
    frame,
    sale_v2,
    text_field,
)


def test_nak_next_frame_is_not_executed(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.nak())
    assert host.enq() == NAK
    host.write(frame(cmd(0x8D, b"\x00")))
    assert host.byte() == NAK
    assert emulator.state.receipt is None
    assert host.call(cmd(0x8D, b"\x00")).error == 0  # the resent frame is served


def test_bad_lrc_in_next_answer_then_good_on_replay(
    host: RawHost, emulator: RegistrarEmulator
) -> None:
    emulator.inject(Fault.bad_lrc())
    bad = host.call(cmd(0x10), ack=False)
    assert not bad.lrc_ok
    host.write(bytes([NAK, ENQ]))
    assert host.byte() == ACK
    good = host.read_answer()
    assert good.lrc_ok and good.body == bad.body
    host.write(bytes([ACK]))
    assert host.enq() == NAK


def test_silence_for_n_frames(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.silence(2))
    for _ in range(2):
        host.write(frame(cmd(0x8D, b"\x00")))
        assert host.quiet_for(0.3) == b""
    assert host.enq() == NAK  # ENQ is still answered, and nothing is pending
    assert emulator.state.receipt is None  # silent frames are not executed
    assert host.call(cmd(0x8D, b"\x00")).error == 0


def test_drop_answer_keeps_it_pending(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.drop_answer())
    assert host.enq() == NAK
    host.write(frame(cmd(0x8D, b"\x00")))
    assert host.byte() == ACK
    assert host.quiet_for(0.3) == b""  # the answer never came
    host.write(bytes([ENQ]))
    assert host.byte() == ACK  # but it is pending: the command ran
    assert host.read_answer().body == bytes([0x8D, 0, 30])
    host.write(bytes([ACK]))
    assert emulator.state.receipt is not None
    assert emulator.commands_seen_count(0x8D) == 1


def test_error_code_on_a_given_command(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.error(0xFF45, 0x03, count=1))
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 100))
    assert host.call(close_v2(cash=100)).error == 0x03
    assert emulator.state.receipt is not None  # refused: the receipt stays open
    assert host.call(close_v2(cash=100)).error == 0  # count used up


def test_error_fault_with_count_zero_holds_until_cleared(
    host: RawHost, emulator: RegistrarEmulator
) -> None:
    emulator.inject(Fault.error(0x10, 0x50, count=0))
    assert host.call(cmd(0x10)).error == 0x50
    assert host.call(cmd(0x10)).error == 0x50
    emulator.clear_faults()
    assert host.call(cmd(0x10)).error == 0


def test_paper_out(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.paper_out())
    assert host.call(cmd(0x17, b"\x02" + text_field("x"))).error == 0x6B
    assert host.call(cmd(0x8D, b"\x00")).error == 0x6B
    flags = int.from_bytes(host.call(cmd(0x10)).fields[1:3], "little")
    assert not flags & (1 << 7) and not flags & (1 << 1)
    assert emulator.paper == []


def test_cover_open(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.cover_open())
    assert host.call(cmd(0x17, b"\x02" + text_field("x"))).error == 0x6B
    flags = int.from_bytes(host.call(cmd(0x10)).fields[1:3], "little")
    assert flags & (1 << 10)  # the status tells a cover from paper
    assert flags & (1 << 7)
    emulator.clear_faults()
    assert host.call(cmd(0x17, b"\x02" + text_field("x"))).error == 0


def test_fn_full(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.fn_full())
    assert host.call(cmd(0x8D, b"\x00")).error == 0x14
    assert host.call(cmd(0xFF01)).fields[4] & 0x04  # warning flag: memory full
    assert host.call(cmd(0x17, b"\x02" + text_field("x"))).error == 0  # non-fiscal still prints


def test_fn_full_inside_a_receipt_refuses_the_close(
    host: RawHost, emulator: RegistrarEmulator
) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 100))
    emulator.inject(Fault.fn_full())
    assert host.call(close_v2(cash=100)).error == 0x14
    assert emulator.state.receipt is not None and emulator.documents == []


def test_fn_missing(host: RawHost, emulator: RegistrarEmulator) -> None:
    emulator.inject(Fault.fn_missing())
    assert host.call(cmd(0x8D, b"\x00")).error == 0x67
    assert host.call(cmd(0xFF01)).error == 0x67
    assert host.call(cmd(0x10)).error == 0  # the printer part still answers


def test_clear_faults_lifts_everything(host: RawHost, emulator: RegistrarEmulator) -> None:
    for fault in (
        Fault.nak(),
        Fault.silence(3),
        Fault.paper_out(),
        Fault.cover_open(),
        Fault.fn_full(),
        Fault.fn_missing(),
        Fault.shift_over_24h(),
    ):
        emulator.inject(fault)
    assert len(emulator.pending_faults()) == 7
    emulator.clear_faults()
    assert emulator.pending_faults() == []
    assert host.call(cmd(0x8D, b"\x00")).error == 0


def test_reset_gives_a_fresh_device(host: RawHost, emulator: RegistrarEmulator) -> None:
    host.call(cmd(0x8D, b"\x00"))
    host.call(sale_v2("x", 1_000_000, 100))
    host.call(close_v2(cash=100))
    emulator.reset()
    assert emulator.documents == [] and emulator.paper == []
    assert host.call(cmd(0x10)).fields[3] == 4


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "nak"}, Fault.nak()),
        ({"kind": "silence", "count": 3}, Fault.silence(3)),
        ({"kind": "error", "command": "0xFF45", "code": 3}, Fault.error(0xFF45, 3)),
        ({"kind": "error", "command": 128, "code": "0x6B", "count": 2}, Fault.error(0x80, 0x6B, 2)),
        ({"kind": "paper_out"}, Fault.paper_out()),
    ],
)
def test_fault_from_json(spec: dict[str, object], expected: Fault) -> None:
    assert Fault.from_json(spec) == expected


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "meteor"}, "unknown fault kind"),
        ({"kind": "error", "code": 3}, "needs `command`"),
        ({"kind": "error", "command": 16}, "needs `code`"),
        ({"kind": "silence", "count": "many"}, "`count` must be a number"),
        ({"kind": "silence", "count": -1}, "count must be >= 0"),
        (["nak"], "JSON object"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(spec: object, words: str) -> None:
    with pytest.raises(FaultSpecError, match=words):
        Fault.from_json(spec)


def test_every_fault_kind_is_covered_here() -> None:
    covered = {
        FaultKind.NAK, FaultKind.BAD_LRC, FaultKind.SILENCE, FaultKind.DROP_ANSWER,
        FaultKind.ERROR, FaultKind.PAPER_OUT, FaultKind.COVER_OPEN, FaultKind.SHIFT_OVER_24H,
        FaultKind.FN_FULL, FaultKind.FN_MISSING,
    }  # fmt: skip
    assert covered == set(FaultKind)  # shift_over_24h is in test_state.py


def test_device_conditions_go_through_inject_not_the_fault_book(
    emulator: RegistrarEmulator,
) -> None:
    with pytest.raises(FaultSpecError, match="device condition"):
        emulator.faults.add(Fault.paper_out())
