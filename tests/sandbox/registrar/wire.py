"""A raw host for the emulator tests: bytes on a pty or a socket, framed here by hand.

Deliberately a third framing (neither the emulator's nor the driver's), small enough to
check by eye: STX LEN BODY LRC, LRC = XOR of LEN and BODY.
"""

from __future__ import annotations

import os
import select
import socket
import time
import tty
from dataclasses import dataclass

STX, ENQ, ACK, NAK = 0x02, 0x05, 0x06, 0x15
PASSWORD = 30


def lrc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(body: bytes) -> bytes:
    head = bytes([len(body)]) + body
    return bytes([STX]) + head + bytes([lrc(head)])


def pw(password: int = PASSWORD) -> bytes:
    return password.to_bytes(4, "little")


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


@dataclass
class Answer:
    body: bytes  # command bytes, error, fields
    lrc_ok: bool

    @property
    def command(self) -> int:
        return (0xFF00 | self.body[1]) if self.body[0] == 0xFF else self.body[0]

    @property
    def error(self) -> int:
        return self.body[2] if self.body[0] == 0xFF else self.body[1]

    @property
    def fields(self) -> bytes:
        """What follows the error byte."""
        return self.body[3:] if self.body[0] == 0xFF else self.body[2:]


class RawHost:
    """Writes and reads bytes with deadlines; never sleeps to synchronise."""

    def __init__(self, *, fd: int | None = None, sock: socket.socket | None = None) -> None:
        self._fd = fd
        self._sock = sock
        self._buffer = bytearray()

    @classmethod
    def open_pty(cls, path: str) -> RawHost:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        return cls(fd=fd)

    @classmethod
    def connect(cls, port: int) -> RawHost:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock=sock)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        if self._sock is not None:
            self._sock.close()

    def write(self, data: bytes) -> None:
        if self._sock is not None:
            self._sock.sendall(data)
        else:
            assert self._fd is not None
            os.write(self._fd, data)

    def _fill(self, timeout: float) -> bool:
        source = self._sock.fileno() if self._sock is not None else self._fd
        ready, _, _ = select.select([source], [], [], timeout)
        if not ready:
            return False
        if self._sock is not None:
            chunk = self._sock.recv(4096)
        else:
            assert self._fd is not None
            chunk = os.read(self._fd, 4096)
        if not chunk:
            raise ConnectionError("the emulator closed the link")
        self._buffer += chunk
        return True

    def read(self, count: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self._buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                break
        out = bytes(self._buffer[:count])
        del self._buffer[:count]
        return out

    def quiet_for(self, seconds: float) -> bytes:
        """Whatever arrives within `seconds` (b"" when the emulator stays silent)."""
        self._fill(seconds)
        out = bytes(self._buffer)
        self._buffer.clear()
        return out

    def byte(self, timeout: float = 5.0) -> int | None:
        data = self.read(1, timeout)
        return data[0] if data else None

    def read_answer(self, timeout: float = 5.0) -> Answer:
        start = self.byte(timeout)
        assert start == STX, f"expected STX, got {start!r}"
        length = self.read(1)[0]
        rest = self.read(length + 1)
        assert len(rest) == length + 1, "answer cut short"
        body = rest[:-1]
        return Answer(body, lrc(bytes([length]) + body) == rest[-1])

    def enq(self) -> int | None:
        self.write(bytes([ENQ]))
        return self.byte()

    def call(self, body: bytes, *, ack: bool = True) -> Answer:
        """ENQ, the frame, ACK expected, the answer read (and ACKed unless ack=False)."""
        assert self.enq() == NAK, "the emulator had an answer pending"
        self.write(frame(body))
        got = self.byte()
        assert got == ACK, f"frame not acknowledged: {got!r}"
        answer = self.read_answer()
        if ack:
            self.write(bytes([ACK]))
        return answer


def cmd(code: int, data: bytes = b"", password: int | None = PASSWORD) -> bytes:
    head = bytes([0xFF, code & 0xFF]) if code > 0xFF else bytes([code])
    return head + (pw(password) if password is not None else b"") + data


def text_field(value: str, size: int = 40) -> bytes:
    return value.encode("cp1251")[:size].ljust(size, b"\x00")


def sale_v2(
    name: str,
    quantity_millionths: int,
    price: int,
    amount: int | None = None,
    *,
    tax: int = 8,
    method: int = 4,
    subject: int = 1,
    operation: int = 1,
) -> bytes:
    amount_field = le(amount, 5) if amount is not None else b"\xff" * 5
    return cmd(
        0xFF46,
        bytes([operation])
        + le(quantity_millionths, 6)
        + le(price, 5)
        + amount_field
        + b"\xff" * 5
        + bytes([tax, 1, method, subject])
        + name.encode("cp1251"),
    )


def close_v2(cash: int = 0, electronic: int = 0, tax_system: int = 1) -> bytes:
    payments = le(cash, 5) + le(electronic, 5) + bytes(5 * 14)
    return cmd(0xFF45, payments + b"\x00" + bytes(5 * 6) + bytes([tax_system]))
