"""SerialTransport against real ptys, pyserial's loop:// and its RFC2217 server."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from drivers.transport import TransportClosed, TransportError
from drivers.transport.serial import SerialSettings, SerialTransport

try:
    from tests.drivers.pty_helpers import Pty, open_fds, rfc2217_port
except ImportError:
    from pty_helpers import Pty, open_fds, rfc2217_port  # type: ignore[no-redef,import-not-found]


def test_pty_round_trip_both_ways() -> None:
    with Pty() as port, SerialTransport(port.path) as t:
        port.send(b"4006381333931\r")
        got = b""
        while len(got) < 14:
            chunk = t.read(4096, timeout=2)
            assert chunk, "read timed out"
            got += chunk
        assert got == b"4006381333931\r"
        t.write(b"\x1b@hello")
        assert port.recv(7) == b"\x1b@hello"


def test_read_hands_on_what_arrived_without_waiting_for_size() -> None:
    with Pty() as port, SerialTransport(port.path) as t:
        port.send(b"AB")
        start = time.monotonic()
        assert t.read(4096, timeout=5) in (b"A", b"AB")
        assert time.monotonic() - start < 2  # did not sit out the 5 s timeout


def test_read_timeout_returns_empty() -> None:
    with Pty() as port, SerialTransport(port.path) as t:
        assert t.read(4096, timeout=0.01) == b""


def test_unplug_raises_transport_closed_naming_port() -> None:
    port = Pty()
    t = SerialTransport(port.path)
    t.open()
    port.unplug()
    with pytest.raises(TransportClosed, match=port.path):
        t.read(4096, timeout=2)
    assert not t.is_open
    with pytest.raises(TransportClosed, match="closed"):
        t.write(b"x")


def test_missing_port_error_names_port_and_settings(tmp_path: object) -> None:
    path = f"{tmp_path}/ttyUSB-missing"
    with pytest.raises(TransportError, match=r"ttyUSB-missing.*9600 8N1.*No such file"):
        SerialTransport(path).open()


def test_not_a_tty_error_names_port_settings_and_reason() -> None:
    t = SerialTransport("/dev/null", SerialSettings(bytesize=7, parity="E"))
    with pytest.raises(TransportError, match=r"/dev/null: cannot open at 9600 7E1: .*ioctl"):
        t.open()
    assert not t.is_open


def test_open_failure_leaks_no_fd() -> None:
    before = open_fds()
    for _ in range(20):
        with pytest.raises(TransportError):
            SerialTransport("/dev/null").open()
    assert open_fds() == before


def test_second_opener_is_refused_when_exclusive() -> None:
    with Pty() as port, SerialTransport(port.path):
        with pytest.raises(TransportError, match=port.path):
            SerialTransport(port.path).open()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baudrate": 0}, "baudrate"),
        ({"bytesize": 9}, "data bits"),
        ({"parity": "X"}, "parity"),
        ({"stopbits": 3}, "stop bits"),
        ({"rtscts": True, "xonxoff": True}, "not both"),
        ({"write_timeout": 0}, "write timeout"),
    ],
)
def test_bad_settings_rejected_before_opening(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SerialSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_short_form() -> None:
    assert SerialSettings(19200, 7, "E", 2, rtscts=True).short == "19200 7E2 rtscts"


def test_loop_url() -> None:
    with SerialTransport("loop://") as t:
        t.write(b"]C1abc\r")
        assert t.read(4096, timeout=1) == b"]C1abc\r"


def test_rfc2217_negotiates_7e1_and_flow_control_on_the_device() -> None:
    settings = SerialSettings(19200, 7, "E", 1, xonxoff=True)
    with rfc2217_port() as server, SerialTransport(server.url, settings) as t:
        t.write(b"PING\r")
        got = b""
        deadline = time.monotonic() + 5
        while got != b"PING\r" and time.monotonic() < deadline:
            got += t.read(4096, timeout=0.5)
        assert got == b"PING\r"
        dev = server.device
        assert (dev.baudrate, dev.bytesize, dev.parity, dev.stopbits) == (19200, 7, "E", 1)
        assert dev.xonxoff is True


def test_rfc2217_modem_lines_reach_the_client() -> None:
    with rfc2217_port() as server, SerialTransport(server.url) as t:
        assert t.modem_lines()["cts"] is False
        server.device.lines.update(cts=True, dsr=True)
        done = threading.Event()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not done.is_set():
            t.read(1, timeout=0.05)  # keeps the telnet channel serviced
            lines = t.modem_lines()
            if lines["cts"] and lines["dsr"]:
                done.set()
        assert done.is_set(), "CTS/DSR never reached the client"
        t.set_output_lines(rts=False, dtr=True)


def test_pty_has_no_modem_lines_and_says_so() -> None:
    with Pty() as port, SerialTransport(port.path) as t:
        with pytest.raises(TransportError, match="modem lines"):
            t.modem_lines()


def test_close_is_idempotent_and_releases_fd() -> None:
    with Pty() as port:
        before = open_fds()
        t = SerialTransport(port.path)
        t.open()
        assert open_fds() != before
        t.close()
        t.close()
        assert open_fds() == before
        assert os.path.exists(port.path)


def test_write_to_unplugged_port_is_transport_closed() -> None:
    port = Pty()
    t = SerialTransport(port.path)
    t.open()
    port.unplug()
    with pytest.raises(TransportClosed, match=rf"{port.path}: write failed"):
        t.write(b"\x1b@" * 64)
    assert not t.is_open


def test_socket_url_reaches_a_real_listener() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    with server, SerialTransport(url) as t:
        peer, _ = server.accept()
        with peer:
            peer.sendall(b"]E04006381333931\r")
            got = b""
            while not got.endswith(b"\r"):
                chunk = t.read(4096, timeout=2)
                assert chunk, "read timed out"
                got += chunk
            assert got == b"]E04006381333931\r"
            peer.close()
            with pytest.raises(TransportClosed, match=url):
                while True:
                    t.read(4096, timeout=2)
