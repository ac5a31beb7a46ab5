"""The POS-facing virtual ports, opened the way a POS opens them: pyserial on the link, a socket."""

from __future__ import annotations

import os
import select
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from drivers.transport.base import TransportClosed, TransportError
from drivers.virtual_port import PtyPort, TcpListenPort


def _read_exactly(port: PtyPort | TcpListenPort, size: int, attempts: int = 50) -> bytes:
    got = b""
    for _ in range(attempts):
        got += port.read(size - len(got), timeout=0.2)
        if len(got) >= size:
            break
    return got


def _settles(value: Callable[[], int], expected: int) -> bool:
    """Poll a kernel figure that has no event (the pty's unread count) until it settles."""
    tick = threading.Event()
    for _ in range(100):
        if value() == expected:
            return True
        tick.wait(0.01)
    return False


def _serial_read(pos: serial.Serial, size: int) -> bytes:
    got = b""
    for _ in range(25):
        got += pos.read(size - len(got))
        if len(got) >= size:
            break
    return got


def test_pty_bytes_both_ways_through_the_symlink(tmp_path: Path) -> None:
    link = tmp_path / "run" / "kkt"
    port = PtyPort(link, "kkt")
    try:
        assert link.is_symlink()
        assert os.readlink(link) == port.slave_path
        with serial.Serial(str(link), 115200, timeout=0.2) as pos:
            pos.write(b"\x05\x02\x01\x10")
            assert _read_exactly(port, 4) == b"\x05\x02\x01\x10"
            # raw mode: no echo, no CR/LF translation, no signals on 0x03
            port.write(b"\x06\r\n\x03\x00\xff")
            assert _serial_read(pos, 6) == b"\x06\r\n\x03\x00\xff"
            assert port.read(timeout=0.05) == b""  # nothing echoed back
    finally:
        port.close()


def test_pty_tells_and_drops_what_the_pos_has_not_read(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "scanner", "scanner")
    try:
        assert port.unread() == 0
        port.write(b"4006381333931\r")  # no POS has the port open
        assert _settles(port.unread, 14)  # the kernel moves pty bytes on its own work queue
        port.discard_unread()
        assert port.unread() == 0
        fd = os.open(port.slave_path, os.O_RDWR | os.O_NOCTTY)  # opened without a flush
        try:
            port.write(b"x")
            ready, _, _ = select.select([fd], [], [], 2)
            assert ready and os.read(fd, 64) == b"x"  # the dropped scan is not before it
            assert port.unread() == 0
        finally:
            os.close(fd)
    finally:
        port.close()
    assert port.unread() == 0  # closed: nothing to tell


def test_pty_pos_closing_is_not_an_error_and_it_can_reopen(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    port = PtyPort(link, "scanner")
    try:
        with serial.Serial(str(link), 9600, timeout=0.2) as pos:
            pos.write(b"first\r")
            assert _read_exactly(port, 6) == b"first\r"
        # the POS is gone: reads time out quietly, the port stays open
        assert port.read(timeout=0.05) == b""
        assert port.is_open
        with serial.Serial(str(link), 9600, timeout=0.2) as pos:
            pos.write(b"second\r")
            assert _read_exactly(port, 7) == b"second\r"
            port.write(b"ok")
            assert _serial_read(pos, 2) == b"ok"
    finally:
        port.close()


def test_pty_close_removes_its_symlink_and_is_idempotent(tmp_path: Path) -> None:
    link = tmp_path / "printer"
    port = PtyPort(link, "printer")
    port.close()
    assert not link.is_symlink() and not link.exists()
    port.close()
    assert not port.is_open
    with pytest.raises(TransportClosed, match="printer"):
        port.read()


def test_pty_replaces_a_stale_symlink(tmp_path: Path) -> None:
    link = tmp_path / "kkt"
    link.symlink_to("/dev/pts/does-not-exist")
    port = PtyPort(link, "kkt")
    try:
        assert os.readlink(link) == port.slave_path
    finally:
        port.close()


def test_pty_close_leaves_a_symlink_someone_else_repointed(tmp_path: Path) -> None:
    link = tmp_path / "kkt"
    first = PtyPort(link, "kkt-1")
    second = PtyPort(link, "kkt-2")
    try:
        first.close()
        assert os.readlink(link) == second.slave_path
    finally:
        second.close()
    assert not link.is_symlink()


def test_pty_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    link = tmp_path / "ttyS0"
    link.write_bytes(b"precious")
    with pytest.raises(TransportError, match="not a symlink"):
        PtyPort(link, "kkt")
    assert link.read_bytes() == b"precious"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_pty_mode_lets_another_user_open_it(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "kkt", "kkt", mode=0o666)
    try:
        assert stat.S_IMODE(os.stat(port.slave_path).st_mode) == 0o666
    finally:
        port.close()


def test_pty_without_a_link(tmp_path: Path) -> None:
    port = PtyPort(None, "bare")
    try:
        assert port.slave_path.startswith("/dev/")
        fd = os.open(port.slave_path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"x")
            assert _read_exactly(port, 1) == b"x"
        finally:
            os.close(fd)
    finally:
        port.close()


def test_tcp_bytes_both_ways_and_reconnect() -> None:
    port = TcpListenPort("127.0.0.1", 0, "kkt-tcp")
    try:
        assert port.bound_port > 0
        port.write(b"dropped")  # no POS yet: nobody to answer, nothing queued
        with socket.create_connection(("127.0.0.1", port.bound_port), timeout=2) as pos:
            pos.sendall(b"\x05")
            assert _read_exactly(port, 1) == b"\x05"
            port.write(b"\x15")
            assert pos.recv(16) == b"\x15"
        # the POS left: not an error, reads return b""
        assert _read_exactly(port, 1, attempts=3) == b""
        assert port.is_open and not port.connected
        with socket.create_connection(("127.0.0.1", port.bound_port), timeout=2) as pos:
            pos.sendall(b"again")
            assert _read_exactly(port, 5) == b"again"
            port.write(b"yes")
            assert pos.recv(16) == b"yes"
    finally:
        port.close()


def test_tcp_a_new_connection_replaces_the_old() -> None:
    port = TcpListenPort("127.0.0.1", 0, "kkt-tcp")
    try:
        old = socket.create_connection(("127.0.0.1", port.bound_port), timeout=2)
        old.sendall(b"o")
        assert _read_exactly(port, 1) == b"o"
        new = socket.create_connection(("127.0.0.1", port.bound_port), timeout=2)
        new.sendall(b"n")
        assert _read_exactly(port, 1) == b"n"
        port.write(b"to-new")
        assert new.recv(16) == b"to-new"
        assert old.recv(16) == b""  # the old one was closed by us
        old.close()
        new.close()
    finally:
        port.close()
    with pytest.raises(TransportClosed):
        port.read()


def test_tcp_refuses_a_port_in_use() -> None:
    first = TcpListenPort("127.0.0.1", 0, "a")
    try:
        with pytest.raises(TransportError, match="cannot listen"):
            TcpListenPort("127.0.0.1", first.bound_port, "b")
    finally:
        first.close()
