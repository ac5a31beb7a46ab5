"""TcpTransport over real loopback sockets, FileTransport over real files and a pty node."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.transport import TransportClosed, TransportError
from drivers.transport.file import FileTransport
from drivers.transport.tcp import TcpTransport

try:
    from tests.drivers.pty_helpers import Pty
except ImportError:
    from pty_helpers import Pty  # type: ignore[no-redef,import-not-found]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    yield server
    server.close()


def test_tcp_write_and_status_reply(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with TcpTransport("127.0.0.1", port) as t:
        peer, _ = listener.accept()
        with peer:
            t.write(b"\x10\x04\x01")
            assert peer.recv(3) == b"\x10\x04\x01"
            peer.sendall(b"\x16")
            assert t.read(16, timeout=2) == b"\x16"
            assert t.read(16, timeout=0.01) == b""


def test_tcp_peer_close_is_transport_closed(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    t = TcpTransport("127.0.0.1", port)
    t.open()
    peer, _ = listener.accept()
    peer.close()
    with pytest.raises(TransportClosed, match=f"127.0.0.1:{port}.*closed"):
        t.read(16, timeout=2)
    assert not t.is_open


def test_tcp_refused_names_host_and_port() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now
    with pytest.raises(TransportError, match=f"tcp://127.0.0.1:{port}: cannot connect"):
        TcpTransport("127.0.0.1", port).open()


def test_tcp_bad_port_rejected() -> None:
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        TcpTransport("127.0.0.1", 70000)


def test_file_capture_is_private_and_byte_exact(tmp_path: Path) -> None:
    path = tmp_path / "lp0.capture"
    with FileTransport(str(path), readable=False) as t:
        t.write(b"\x1b@receipt\n")
        t.write(b"\x1dV\x00")
    assert path.read_bytes() == b"\x1b@receipt\n\x1dV\x00"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_read_back_and_eof(tmp_path: Path) -> None:
    path = tmp_path / "in.bin"
    path.write_bytes(b"abc")
    with FileTransport(str(path)) as t:
        assert t.read(2) == b"ab"
        assert t.read(16) == b"c"
        assert t.read(16) == b""


def test_file_write_only_refuses_read(tmp_path: Path) -> None:
    with FileTransport(str(tmp_path / "x"), readable=False) as t:
        with pytest.raises(TransportError, match="write-only"):
            t.read()


def test_file_missing_directory_names_path(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "lp0"
    with pytest.raises(TransportError, match=f"{path}: cannot open"):
        FileTransport(str(path)).open()


def test_file_on_a_vanishing_char_device_is_transport_closed() -> None:
    port = Pty()
    t = FileTransport(port.path)
    t.open()
    port.send(b"ok")
    assert t.read(16, timeout=2) == b"ok"
    port.unplug()
    with pytest.raises(TransportClosed, match=port.path):
        t.read(16, timeout=2)
    assert not t.is_open
