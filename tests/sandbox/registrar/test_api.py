"""The emulator's Python face as the driver's and the endpoint's tests use it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.registrar import PaperLine, RegistrarEmulator
from tests.sandbox.registrar.wire import RawHost, cmd, text_field


def test_pty_link_points_at_the_slave_and_goes_away_on_stop(tmp_path: Path) -> None:
    link = tmp_path / "kkt"
    link.symlink_to("/nonexistent")  # a stale link from an earlier run is replaced
    emu = RegistrarEmulator()
    path = emu.start_pty(link=link)
    assert os.readlink(link) == path
    host = RawHost.open_pty(str(link))
    try:
        assert host.call(cmd(0x10)).error == 0
    finally:
        host.close()
    emu.stop()
    assert not link.is_symlink()
    emu.stop()  # idempotent


def test_a_host_may_reopen_the_serial_port(emulator: RegistrarEmulator) -> None:
    path = emulator.start_pty()
    for _ in range(3):
        host = RawHost.open_pty(path)
        try:
            assert host.call(cmd(0x10)).error == 0
        finally:
            host.close()


def test_several_tcp_hosts_share_one_device(emulator: RegistrarEmulator) -> None:
    port = emulator.start_tcp(port=0)
    first, second = RawHost.connect(port), RawHost.connect(port)
    try:
        first.call(cmd(0x8D, b"\x00"))
        assert second.call(cmd(0x10)).fields[3] == 8  # the receipt the first one opened
    finally:
        first.close()
        second.close()


def test_context_manager_stops_servers() -> None:
    with RegistrarEmulator() as emu:
        port = emu.start_tcp(port=0)
    with pytest.raises(OSError):
        RawHost.connect(port)


def test_line_width_sets_font_widths(tmp_path: Path) -> None:
    with RegistrarEmulator(line_width=32) as emu:
        host = RawHost.open_pty(emu.start_pty())
        try:
            f = host.call(cmd(0x26, b"\x01")).fields
            assert int.from_bytes(f[0:2], "little") // f[2] == 32
            host.call(cmd(0x17, b"\x02" + text_field("y" * 40)))
        finally:
            host.close()
        assert emu.paper == [PaperLine("text", "y" * 32)]
    with pytest.raises(ValueError, match="line_width"):
        RegistrarEmulator(line_width=5)
