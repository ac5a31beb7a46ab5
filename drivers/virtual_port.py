"""Virtual ports facing the POS: a pty behind a stable symlink, or a TCP listener.

A POS that cannot be changed keeps opening "its" serial port or TCP address; these give it
one, and hand what it writes to a relay as an ordinary `Transport`.  The POS comes and goes
(it restarts, it closes the port between receipts), so unlike a device transport a closed
peer is not an error here: reads just return b"" and the port waits for the next open.
That is why the pty keeps its own slave end open (the master never sees EIO when the POS
closes), and why the TCP listener keeps listening after its client leaves.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import socket
import sys
import termios
import threading
import tty
from pathlib import Path

from drivers.transport.base import Transport, TransportClosed, TransportError, TransportTimeout

log = logging.getLogger("posbridge.drivers.virtual_port")

WRITE_TIMEOUT = 5.0


def _link_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` atomically; never replace anything but a symlink.

    A regular file or device node at the link path is someone else's (a real serial port, a
    typo in config): replacing it would lose it, so we refuse with a message that says so.
    """
    if link.exists() or link.is_symlink():
        if not link.is_symlink():
            raise TransportError(
                f"{link}: exists and is not a symlink; refusing to replace it "
                "(choose another `link` for this pass-through port)"
            )
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        temporary = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(target)
        os.replace(temporary, link)
    except OSError as exc:
        raise TransportError(f"{link}: cannot create the symlink to {target}: {exc}") from exc


class PtyPort(Transport):
    """A pseudo-terminal the POS opens through `link`; we read and write its master.

    The pty is created (raw mode) and the symlink made on construction, so `slave_path` and
    the link exist before any relay starts; `close()` removes the link if it is still ours.
    `mode` (e.g. 0o660) loosens the slave's permissions for a POS running as another user.
    """

    def __init__(
        self,
        link: Path | None,
        name: str,
        *,
        mode: int | None = None,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.link = link
        self.name = name
        self.mode = mode
        self.write_timeout = write_timeout
        self.slave_path = ""
        self._master: int | None = None
        self._slave: int | None = None
        self.open()

    def open(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            path = os.ttyname(slave)
            if self.mode is not None:
                os.chmod(path, self.mode)
            os.set_blocking(master, False)
            if self.link is not None:
                _link_symlink(self.link, path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self.slave_path = master, slave, path
        log.info("%s: pty %s%s", self.name, path, f" (link {self.link})" if self.link else "")

    @property
    def is_open(self) -> bool:
        return self._master is not None

    def fileno(self) -> int:
        """The master's descriptor, for a relay that selects over several ports."""
        return self._require()

    def _require(self) -> int:
        if self._master is None:
            raise TransportClosed(f"{self.name}: virtual port is closed")
        return self._master

    def write(self, data: bytes) -> None:
        fd = self._require()
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                _, ready, _ = select.select([], [fd], [], self.write_timeout)
                if not ready:
                    raise TransportTimeout(
                        f"{self.name}: the POS is not reading; {len(view)} bytes not written "
                        f"within {self.write_timeout}s"
                    ) from None
                continue
            except OSError as exc:
                raise TransportError(f"{self.name}: write failed: {exc}") from exc
            view = view[written:]

    def unread(self) -> int:
        """Bytes written for the POS that it has not read (yet): 0 while it reads as they come,
        growing while it keeps the port closed (the pty holds them, a real port would not)."""
        slave = self._slave
        if slave is None:
            return 0
        try:
            got = fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int.from_bytes(got, sys.byteorder)

    def discard_unread(self) -> None:
        """Drop what the POS has not read, as a real port the POS keeps closed loses it."""
        slave = self._slave
        if slave is not None:
            with contextlib.suppress(OSError, termios.error):
                termios.tcflush(slave, termios.TCIFLUSH)

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        fd = self._require()
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return b""
            return os.read(fd, size)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            if self._master is None:  # closed under us by another thread
                raise TransportClosed(f"{self.name}: virtual port is closed") from exc
            return b""  # EIO: no slave open; we hold one, so only transiently

    def close(self) -> None:
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if master is None:
            return
        if self.link is not None:
            with contextlib.suppress(OSError):
                if self.link.is_symlink() and os.readlink(self.link) == self.slave_path:
                    self.link.unlink()
        for fd in (master, slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        log.info("%s: pty %s closed", self.name, self.slave_path)


class TcpListenPort(Transport):
    """Listens on host:port for the POS; one connection at a time, a new one replaces it.

    Bytes written while no POS is connected are dropped: there is no one to answer, and the
    next POS must not receive replies meant for the previous one.
    """

    def __init__(
        self,
        host: str,
        port: int,
        name: str,
        *,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"tcp listen port must be 0..65535, got {port!r}")
        self.host = host
        self.port = port
        self.name = name
        self.write_timeout = write_timeout
        self.bound_port = 0
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self.open()

    def open(self) -> None:
        if self._listener is not None:
            return
        try:
            listener = socket.create_server((self.host, self.port))
        except OSError as exc:
            raise TransportError(
                f"{self.name}: cannot listen on {self.host}:{self.port}: {exc}"
            ) from exc
        listener.setblocking(False)
        self._listener = listener
        self.bound_port = listener.getsockname()[1]
        log.info("%s: listening on %s:%d", self.name, self.host, self.bound_port)

    @property
    def is_open(self) -> bool:
        return self._listener is not None

    @property
    def connected(self) -> bool:
        """True while a POS is connected."""
        return self._client is not None

    def _require(self) -> socket.socket:
        listener = self._listener
        if listener is None:
            raise TransportClosed(f"{self.name}: virtual port is closed")
        return listener

    def _accept_pending(self, listener: socket.socket) -> None:
        """Take the newest waiting connection; it replaces the current POS connection."""
        while True:
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self._listener is None:
                    raise TransportClosed(f"{self.name}: virtual port is closed") from exc
                return
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                old, self._client = self._client, sock
            if old is not None:
                with contextlib.suppress(OSError):
                    old.close()
                log.info("%s: a new POS connection from %s replaces the old one", self.name, peer)
            else:
                log.info("%s: POS connected from %s", self.name, peer)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            if self._client is sock:
                self._client = None
        with contextlib.suppress(OSError):
            sock.close()

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        listener = self._require()
        self._accept_pending(listener)
        client = self._client
        watched = [listener] if client is None else [listener, client]
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
        except (OSError, ValueError) as exc:
            if self._listener is None:
                raise TransportClosed(f"{self.name}: virtual port is closed") from exc
            return b""
        if listener in ready:
            self._accept_pending(listener)
            if self._client is not client:
                return b""  # the old connection is gone; its half-read bytes with it
        if client is None or client not in ready:
            return b""
        try:
            data = client.recv(size)
        except OSError:
            data = b""
        if not data:
            log.info("%s: POS disconnected", self.name)
            self._drop(client)
        return data

    def write(self, data: bytes) -> None:
        listener = self._require()
        self._accept_pending(listener)
        client = self._client
        if client is None:
            log.debug("%s: no POS connected; %d bytes dropped", self.name, len(data))
            return
        client.settimeout(self.write_timeout)
        try:
            client.sendall(data)
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{self.name}: the POS is not reading; write of {len(data)} bytes timed out "
                f"after {self.write_timeout}s"
            ) from exc
        except OSError:
            log.info("%s: POS disconnected during a write", self.name)
            self._drop(client)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        with self._lock:
            client, self._client = self._client, None
        for sock in (client, listener):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
