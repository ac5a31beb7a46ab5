"""The Shtrih-M link layer's bytes, written here from the vendor's protocol description.

The emulator frames on its own, without drivers/: it is the independent peer that must
catch a framing bug in our driver, so it cannot share the driver's code.

A frame is `STX LEN BODY LRC`; BODY is the command code (one byte, or two starting with
0xFF) and its data; LRC is the XOR of LEN and every byte of BODY.
"""

from __future__ import annotations

from functools import reduce

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15
STRAY = 0xFF  # some devices send it over TCP after the host's ACK

MAX_BODY = 255


class FrameError(ValueError):
    """A body that no frame can carry (empty or longer than LEN can say)."""


def lrc(data: bytes) -> int:
    return reduce(lambda acc, byte: acc ^ byte, data, 0)


def frame(body: bytes) -> bytes:
    """Wrap an answer body as a frame with its LRC."""
    if not body or len(body) > MAX_BODY:
        raise FrameError(f"a frame body is 1..{MAX_BODY} bytes, got {len(body)}")
    head = bytes([len(body)]) + body
    return bytes([STX]) + head + bytes([lrc(head)])


def check(length: int, body: bytes, received_lrc: int) -> bool:
    return lrc(bytes([length]) + body) == received_lrc


def split_command(body: bytes) -> tuple[int, bytes]:
    """(command code, rest): 0xFF starts a two-byte code, read big-endian (0xFF46)."""
    if not body:
        raise FrameError("an empty frame has no command")
    if body[0] == 0xFF:
        if len(body) < 2:
            raise FrameError("0xFF starts a two-byte command but the frame ends there")
        return 0xFF00 | body[1], body[2:]
    return body[0], body[1:]


def command_bytes(code: int) -> bytes:
    return bytes([0xFF, code & 0xFF]) if code > 0xFF else bytes([code])
