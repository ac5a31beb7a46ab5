"""The transport contract: write bytes, read with a timeout, close.

Drivers (scanner, card reader, printer, fiscal register) only ever see this, so one
driver works over serial, USB bulk, TCP, a file or a pseudo-terminal, and tests can hand a
driver any of them.  There is one implementation per wire: `serial.SerialTransport`,
`usb.UsbTransport`, `tcp.TcpTransport`, `file.FileTransport` (and `evdev_input` for
keyboard-wedge input).  A transport that loses its device raises `TransportClosed`; the
device layer turns that into an offline status and reconnects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class TransportError(OSError):
    """A transport failed; the message names the port and what went wrong."""


class TransportClosed(TransportError):
    """The device vanished or the transport was closed: reopen before using it again."""


class TransportTimeout(TransportError):
    """A write did not complete in time (reads return b"" on timeout instead)."""


class Transport(ABC):
    """Open on construction or on `open()`; `name` says which port, for messages and logs."""

    name: str = "?"

    @abstractmethod
    def open(self) -> None:
        """Open the port; raises TransportError naming the port if it cannot."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Write all of `data` or raise."""

    @abstractmethod
    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        """Up to `size` bytes; b"" if nothing arrived within `timeout` seconds."""

    @abstractmethod
    def close(self) -> None:
        """Idempotent."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @property
    def can_read(self) -> bool:
        """False for a write-only device (a capture file, a parallel port).

        Nothing there will ever answer, so a printer does not send status queries into it
        (they would end up in the capture) and reports its status as UNKNOWN instead.
        """
        return True

    def __enter__(self) -> Self:
        if not self.is_open:
            self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, open={self.is_open})"
