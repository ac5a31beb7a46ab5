"""The mode/submode state machine as the short status (0x10) reports it."""

from __future__ import annotations

from sandbox.registrar import Fault, RegistrarEmulator
from tests.sandbox.registrar.wire import RawHost, close_v2, cmd, sale_v2


def mode(host: RawHost) -> tuple[int, int]:
    f = host.call(cmd(0x10)).fields
    return f[3], f[4]


def test_a_fresh_device_has_its_shift_closed(pty_host: RawHost) -> None:
    assert mode(pty_host) == (4, 0)


def test_first_receipt_opens_the_shift_itself(
    pty_host: RawHost, emulator: RegistrarEmulator
) -> None:
    pty_host.call(cmd(0x8D, b"\x00"))
    assert mode(pty_host) == (8, 0)  # receipt open, sale (high nibble 0)
    assert emulator.state.shift_open and emulator.state.shift_number == 1
    assert [doc["kind"] for doc in emulator.fiscal_documents] == ["shift_open"]
    pty_host.call(sale_v2("x", 1_000_000, 100))
    pty_host.call(close_v2(cash=100))
    assert mode(pty_host) == (2, 0)  # back to shift open
    pty_host.call(cmd(0x8D, b"\x00"))
    assert emulator.state.shift_number == 1  # the same shift: no second opening


def test_refund_receipt_shows_in_the_mode_high_nibble(pty_host: RawHost) -> None:
    pty_host.call(cmd(0x8D, b"\x02"))
    assert mode(pty_host) == (8 | 2 << 4, 0)


def test_sale_without_open_receipt_opens_one(
    pty_host: RawHost, emulator: RegistrarEmulator
) -> None:
    assert pty_host.call(sale_v2("x", 1_000_000, 100)).error == 0
    assert mode(pty_host)[0] == 8
    assert emulator.state.receipt is not None and len(emulator.state.receipt.items) == 1


def test_second_open_receipt_is_wrong_mode(pty_host: RawHost) -> None:
    pty_host.call(cmd(0x8D, b"\x00"))
    assert pty_host.call(cmd(0x8D, b"\x00")).error == 0x73


def test_close_without_receipt_and_z_inside_receipt_are_wrong_mode(pty_host: RawHost) -> None:
    assert pty_host.call(close_v2(cash=100)).error == 0x73
    pty_host.call(cmd(0x8D, b"\x00"))
    assert pty_host.call(cmd(0x41)).error == 0x73


def test_shift_over_24h_is_mode_3_and_refuses_receipts(
    pty_host: RawHost, emulator: RegistrarEmulator
) -> None:
    emulator.inject(Fault.shift_over_24h())
    assert mode(pty_host) == (3, 0)
    assert pty_host.call(cmd(0x8D, b"\x00")).error == 0x4E
    assert pty_host.call(sale_v2("x", 1_000_000, 100)).error == 0x4E
    assert pty_host.call(cmd(0x41)).error == 0  # the Z report closes it
    assert mode(pty_host) == (4, 0)
    assert pty_host.call(cmd(0x8D, b"\x00")).error == 0  # and a new shift starts


def test_paper_out_submodes_and_continue_printing(
    pty_host: RawHost, emulator: RegistrarEmulator
) -> None:
    emulator.inject(Fault.paper_out())
    assert mode(pty_host) == (4, 1)  # idle, paper out
    emulator.clear_faults()
    pty_host.call(cmd(0x8D, b"\x00"))
    emulator.inject(Fault.paper_out())
    assert mode(pty_host) == (8, 2)  # ran out inside the receipt
    emulator.clear_faults()
    assert mode(pty_host) == (8, 3)  # paper back, waiting for 0xB0
    assert pty_host.call(sale_v2("x", 1_000_000, 100)).error == 0x58
    assert pty_host.call(cmd(0xB0)).error == 0
    assert mode(pty_host) == (8, 0)
    assert pty_host.call(sale_v2("x", 1_000_000, 100)).error == 0


def test_operations_count_in_short_status(pty_host: RawHost) -> None:
    pty_host.call(cmd(0x8D, b"\x00"))
    for _ in range(3):
        pty_host.call(sale_v2("x", 1_000_000, 100))
    assert pty_host.call(cmd(0x10)).fields[5] == 3
