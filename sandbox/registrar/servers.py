"""Where the emulated registrar listens: a pseudo-terminal (the serial port) and TCP.

The pty's slave end is put in raw mode and kept open by the server, so a host may open
and close the port as often as it likes (a real serial device does not vanish when the
cash register software restarts).  One wake pipe stops every loop: once written it stays
readable, so no thread can miss it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from sandbox.registrar.faults import FaultBook
from sandbox.registrar.link import Execute, LinkSession

log = logging.getLogger("posbridge.sandbox.registrar")

CHUNK = 4096


class _Wake:
    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self.write_fd, b"x")

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class _FdChannel:
    """A pty master as a Channel."""

    def __init__(self, fd: int, wake: _Wake) -> None:
        self._fd = fd
        self._wake = wake

    def read(self, timeout: float | None) -> bytes | None:
        ready, _, _ = select.select([self._fd, self._wake.read_fd], [], [], timeout)
        if self._wake.read_fd in ready:
            return None
        if not ready:
            return b""
        try:
            return os.read(self._fd, CHUNK)
        except OSError:
            return None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


class _SocketChannel:
    def __init__(self, sock: socket.socket, wake: _Wake) -> None:
        self._sock = sock
        self._wake = wake

    def read(self, timeout: float | None) -> bytes | None:
        ready, _, _ = select.select([self._sock.fileno(), self._wake.read_fd], [], [], timeout)
        if self._wake.read_fd in ready:
            return None
        if not ready:
            return b""
        try:
            data = self._sock.recv(CHUNK)
        except OSError:
            return None
        return data or None

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(data)


class PtyServer:
    """Serves one link session on a new pty until stopped."""

    def __init__(
        self,
        execute: Execute,
        faults: FaultBook,
        *,
        link: Path | None = None,
        byte_timeout: float = 0.5,
        ack_timeout: float = 1.0,
    ) -> None:
        self._wake = _Wake()
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.path)
        self.session = LinkSession(
            _FdChannel(self.master, self._wake),
            execute,
            faults,
            byte_timeout=byte_timeout,
            ack_timeout=ack_timeout,
        )
        self._thread = threading.Thread(
            target=self.session.run, name=f"registrar-pty {self.path}", daemon=True
        )
        self._thread.start()
        log.info("registrar emulator on pty %s%s", self.path, f" (link {link})" if link else "")

    def stop(self) -> None:
        self._wake.set()
        self._thread.join(timeout=5)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                self.link.unlink()
        self._wake.close()


class TcpServer:
    """Accepts hosts on a TCP port; each connection gets its own link session."""

    def __init__(
        self,
        execute: Execute,
        faults: FaultBook,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stray_ff: Callable[[], bool] = lambda: False,
        byte_timeout: float = 0.5,
        ack_timeout: float = 1.0,
    ) -> None:
        self._execute = execute
        self._faults = faults
        self._stray_ff = stray_ff
        self._byte_timeout = byte_timeout
        self._ack_timeout = ack_timeout
        self._wake = _Wake()
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._clients: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(
            target=self._accept, name=f"registrar-tcp {self.port}", daemon=True
        )
        self._accepting.start()
        log.info("registrar emulator on tcp %s:%d", host, self.port)

    def _accept(self) -> None:
        while True:
            ready, _, _ = select.select([self._listener.fileno(), self._wake.read_fd], [], [])
            if self._wake.read_fd in ready:
                return
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = LinkSession(
                _SocketChannel(sock, self._wake),
                self._execute,
                self._faults,
                byte_timeout=self._byte_timeout,
                ack_timeout=self._ack_timeout,
                stray_ff=self._stray_ff,
            )
            thread = threading.Thread(target=self._serve, args=(sock, session), daemon=True)
            with self._lock:
                self._clients.add(sock)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, session: LinkSession) -> None:
        try:
            session.run()
        finally:
            with self._lock:
                self._clients.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        self._wake.set()
        self._accepting.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            clients = list(self._clients)
            threads = list(self._threads)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._wake.close()
