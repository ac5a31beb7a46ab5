"""An in-memory Transport: keeps what was written and answers requests from a table.

For the faults a real peer cannot produce on demand (a write that fails once, a printer that
answers one request but not the next); everything else runs over real ptys, sockets, files
and the umockdev USB printer.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.transport.base import Transport, TransportClosed


class MemoryTransport(Transport):
    """`replies` maps a request (e.g. DLE EOT 1) to the bytes the "device" sends back; a
    request missing from it gets no answer, as from a printer without a back channel."""

    def __init__(self, replies: Mapping[bytes, bytes] | None = None, name: str = "memory") -> None:
        self.name = name
        self.replies: dict[bytes, bytes] = dict(replies or {})
        self.written = bytearray()
        self.fail_writes: str | None = None  # a reason: every write fails as if unplugged
        self._pending = bytearray()
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        if not self._open:
            raise TransportClosed(f"{self.name}: not open")
        if self.fail_writes is not None:
            self._open = False
            raise TransportClosed(f"{self.name}: write failed: {self.fail_writes}")
        self.written += data
        if data in self.replies:
            self._pending += self.replies[data]

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        if not self._open:
            raise TransportClosed(f"{self.name}: not open")
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    @property
    def output(self) -> bytes:
        return bytes(self.written)

    def clear(self) -> None:
        self.written.clear()
