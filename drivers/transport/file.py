"""A device node or plain file: `/dev/usb/lp0` printers, or a capture file in tests.

Printers behind the kernel `usblp` driver are just a character device; writing to it
prints.  The same class writing to a regular file captures what a driver sends, which is
how a receipt can be checked byte for byte.  Files we create are 0600 because a printed
receipt may carry a card's masked number and a customer's name.
"""

from __future__ import annotations

import errno
import os
import select
import stat

from drivers.transport.base import Transport, TransportClosed, TransportError

_GONE = {errno.ENODEV, errno.EIO, errno.ENXIO, errno.EBADF}


class FileTransport(Transport):
    def __init__(self, path: str, *, readable: bool = True, append: bool = False) -> None:
        self.path = path
        self.name = path
        self.readable = readable
        self.append = append
        self._fd: int | None = None
        self._is_regular = False

    def open(self) -> None:
        if self._fd is not None:
            return
        flags = (os.O_RDWR if self.readable else os.O_WRONLY) | os.O_NOCTTY | os.O_CLOEXEC
        if self.append:
            flags |= os.O_APPEND
        if not os.path.exists(self.path) or self.append:
            flags |= os.O_CREAT
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise TransportError(f"file {self.path}: cannot open: {exc.strerror}") from exc
        self._is_regular = stat.S_ISREG(os.fstat(fd).st_mode)
        self._fd = fd

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def can_read(self) -> bool:
        """A regular file never answers: reading it back would return our own writes."""
        if not self.readable:
            return False
        if self._fd is not None:
            return not self._is_regular
        return not os.path.isfile(self.path)

    def _require(self) -> int:
        if self._fd is None:
            raise TransportClosed(f"file {self.path}: not open")
        return self._fd

    def _fail(self, what: str, exc: OSError) -> TransportError:
        if exc.errno in _GONE:
            self.close()
            return TransportClosed(f"file {self.path}: {what} failed, device gone ({exc.strerror})")
        return TransportError(f"file {self.path}: {what} failed: {exc.strerror}")

    def write(self, data: bytes) -> None:
        fd = self._require()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise self._fail("write", exc) from exc

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        fd = self._require()
        if not self.readable:
            raise TransportError(f"file {self.path}: opened write-only, cannot read")
        try:
            if not self._is_regular:  # a regular file is always "ready"; select would lie
                ready, _, _ = select.select([fd], [], [], timeout)
                if not ready:
                    return b""
            data = os.read(fd, size)
        except OSError as exc:
            raise self._fail("read", exc) from exc
        if not data and not self._is_regular:  # "ready" but empty: the device hung up
            self.close()
            raise TransportClosed(f"file {self.path}: device hung up")
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
