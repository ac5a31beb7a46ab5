"""Raw TCP, as network receipt printers speak it on port 9100 (JetDirect/AppSocket).

There is no framing: bytes in, status bytes out.  A peer that closes or resets the
connection is a vanished device (`TransportClosed`) so the printer goes offline and the
reconnect loop takes over, exactly as for an unplugged USB cable.
"""

from __future__ import annotations

import select
import socket

from drivers.transport.base import Transport, TransportClosed, TransportError, TransportTimeout


class TcpTransport(Transport):
    def __init__(
        self,
        host: str,
        port: int = 9100,
        *,
        connect_timeout: float = 3.0,
        write_timeout: float = 10.0,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"tcp port must be 1..65535, got {port!r}")
        self.host = host
        self.port = port
        self.name = f"tcp://{host}:{port}"
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError as exc:
            raise TransportError(
                f"{self.name}: no answer within {self.connect_timeout}s (printer off or wrong IP?)"
            ) from exc
        except OSError as exc:
            raise TransportError(f"{self.name}: cannot connect: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._sock = sock

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise TransportClosed(f"{self.name}: connection is closed")
        return self._sock

    def write(self, data: bytes) -> None:
        sock = self._require()
        sock.settimeout(self.write_timeout)
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{self.name}: write of {len(data)} bytes timed out after {self.write_timeout}s"
            ) from exc
        except OSError as exc:
            self.close()
            raise TransportClosed(f"{self.name}: write failed, connection lost ({exc})") from exc

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        sock = self._require()
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return b""
            data = sock.recv(size)
        except OSError as exc:
            self.close()
            raise TransportClosed(f"{self.name}: read failed, connection lost ({exc})") from exc
        if not data:
            self.close()
            raise TransportClosed(f"{self.name}: peer closed the connection")
        return data

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
