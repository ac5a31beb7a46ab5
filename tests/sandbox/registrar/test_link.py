"""The link layer, bytes on the wire: ENQ, ACK/NAK, LRC, the pending answer and its replay."""

from __future__ import annotations

from sandbox.registrar import RegistrarEmulator
from tests.sandbox.registrar.wire import ACK, ENQ, NAK, STX, RawHost, cmd, frame, lrc


def test_enq_when_idle_gets_nak(host: RawHost) -> None:
    assert host.enq() == NAK


def test_a_frame_gets_ack_then_an_answer_with_a_good_lrc(host: RawHost) -> None:
    answer = host.call(cmd(0x10))
    assert answer.lrc_ok
    assert answer.command == 0x10 and answer.error == 0
    assert host.enq() == NAK  # the ACKed answer is no longer pending


def test_unacknowledged_answer_is_replayed_on_the_next_enq(
    host: RawHost, emulator: RegistrarEmulator
) -> None:
    first = host.call(cmd(0x8D, b"\x00"), ack=False)  # open receipt; the host "missed" it
    assert first.error == 0
    assert host.quiet_for(0.8) == b""  # ACK timeout passes: nothing is resent unasked
    host.write(bytes([ENQ]))
    assert host.byte() == ACK  # an answer is pending: ACK, then the same answer
    again = host.read_answer()
    assert again == first
    host.write(bytes([ACK]))
    assert host.enq() == NAK
    assert emulator.commands_seen_count(0x8D) == 1  # replayed, not executed twice


def test_host_nak_keeps_the_answer_pending(host: RawHost) -> None:
    first = host.call(cmd(0x10), ack=False)
    host.write(bytes([NAK]))  # "your LRC was wrong"
    host.write(bytes([ENQ]))
    assert host.byte() == ACK
    assert host.read_answer() == first
    host.write(bytes([ACK]))
    assert host.enq() == NAK


def test_a_new_frame_instead_of_ack_is_served(host: RawHost) -> None:
    host.call(cmd(0x10), ack=False)
    host.write(frame(cmd(0xFC, password=None)))  # the host moved on without ACKing
    assert host.byte() == ACK
    answer = host.read_answer()
    assert answer.command == 0xFC
    host.write(bytes([ACK]))
    assert host.enq() == NAK


def test_bad_lrc_from_the_host_gets_nak_and_is_not_executed(
    host: RawHost, emulator: RegistrarEmulator
) -> None:
    good = frame(cmd(0x8D, b"\x00"))
    host.write(good[:-1] + bytes([good[-1] ^ 0x01]))
    assert host.byte() == NAK
    assert emulator.state.receipt is None
    assert host.enq() == NAK  # nothing pending either


def test_two_byte_command_frame(host: RawHost) -> None:
    answer = host.call(cmd(0xFF01))
    assert answer.body[:2] == b"\xff\x01"
    assert answer.command == 0xFF01 and answer.error == 0


def test_a_frame_cut_short_gets_nak(host: RawHost) -> None:
    host.write(bytes([STX, 5, 0x10, 30]))  # promises 5 bytes, sends 2, then stops
    assert host.byte(timeout=5) == NAK
    assert host.call(cmd(0x10)).error == 0  # and the link still works


def test_stray_ff_after_ack_over_tcp_when_switched_on(emulator: RegistrarEmulator) -> None:
    emulator.stray_ff = True
    host = RawHost.connect(emulator.start_tcp(port=0))
    try:
        host.call(cmd(0x10))
        assert host.read(1) == b"\xff"
        assert host.enq() == NAK  # the link is idle after the stray byte
    finally:
        host.close()


def test_no_stray_ff_by_default_over_tcp(tcp_host: RawHost) -> None:
    tcp_host.call(cmd(0x10))
    assert tcp_host.quiet_for(0.3) == b""


def test_no_stray_ff_on_the_serial_port_even_when_switched_on(
    emulator: RegistrarEmulator, pty_host: RawHost
) -> None:
    emulator.stray_ff = True
    pty_host.call(cmd(0x10))
    assert pty_host.quiet_for(0.3) == b""


def test_lrc_is_xor_of_length_and_body() -> None:
    assert lrc(bytes([0x05, 0x10, 0x1E, 0, 0, 0])) == 0x05 ^ 0x10 ^ 0x1E
    assert frame(b"\x10\x1e\x00\x00\x00") == bytes(
        [STX, 5, 0x10, 0x1E, 0, 0, 0, 0x05 ^ 0x10 ^ 0x1E]
    )


def test_a_late_ack_still_acknowledges_the_answer(host: RawHost) -> None:
    host.call(cmd(0x10), ack=False)
    assert host.quiet_for(0.8) == b""  # past the emulator's ACK timeout (0.5 s here)
    host.write(bytes([ACK]))
    assert host.enq() == NAK  # nothing pending: the late ACK counted
