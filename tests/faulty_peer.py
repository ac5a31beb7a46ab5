"""A real TCP peer on loopback that misbehaves on purpose.

Each accepted connection reads one HTTP request and then does what `behaviour` says:
answer with given bytes, reset the connection (RST), or stall until the test ends.
Real sockets, so the client's real network stack sees the fault.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def http_response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    reason = {
        200: "OK",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
        401: "Unauthorized",
        404: "Not Found",
    }.get(status, "X")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class FaultyPeer:
    def __init__(self, behaviour: str, payload: bytes = b"") -> None:
        self.behaviour = behaviour
        self.payload = payload
        self.requests: list[bytes] = []
        self._release = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/publicapi"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(self._read_request(conn))
                if self.behaviour == "reply":
                    conn.sendall(self.payload)
                elif self.behaviour == "reset":
                    conn.sendall(self.payload[: len(self.payload) // 2])
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif self.behaviour == "stall":
                    self._release.wait(30)

    def close(self) -> None:
        self._release.set()
        try:
            self._sock.shutdown(
                socket.SHUT_RDWR
            )  # wakes the accept() below; close() alone does not
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)


@contextmanager
def faulty_peer(behaviour: str, payload: bytes = b"") -> Iterator[FaultyPeer]:
    peer = FaultyPeer(behaviour, payload)
    try:
        yield peer
    finally:
        peer.close()
