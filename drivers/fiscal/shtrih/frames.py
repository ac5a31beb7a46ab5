"""Shtrih-M protocol v1 framing: `STX LEN BODY LRC`, and the body's command/reply layout.

A request body is `CMD PWD(4, little-endian) DATA`; a reply body is `CMD ERR DATA`.  CMD
is one byte, or two bytes (big-endian on the wire) for the FN-era commands that start
with 0xFF.  LRC is the XOR of LEN and every body byte, so a single flipped bit anywhere
after STX is caught.
"""

from __future__ import annotations

from typing import NamedTuple

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15
STRAY = 0xFF  # sent by some devices over TCP after the host's ACK; never a control byte

MAX_BODY = 0xFF  # LEN is one byte


class FrameError(ValueError):
    """A frame or reply that does not follow the layout; the message says what is off."""


def lrc(body: bytes) -> int:
    """XOR of LEN and every byte of the body.

    Long bodies (a sale line, a close) are folded as one big integer, halving its width
    each step: a few big-int operations instead of up to 255 Python-level XORs.
    """
    value = len(body)
    if value < 64:
        for byte in body:
            value ^= byte
        return value & 0xFF
    folded, width = int.from_bytes(body, "little"), value
    while width > 1:
        half = (width + 1) // 2
        folded = (folded & ((1 << (8 * half)) - 1)) ^ (folded >> (8 * half))
        width = half
    return (folded ^ value) & 0xFF


def command_bytes(command: int) -> bytes:
    if 0 <= command <= 0xFF:
        return bytes([command])
    if 0xFF00 <= command <= 0xFFFF:
        return command.to_bytes(2, "big")
    raise FrameError(f"command 0x{command:X} is neither one byte nor 0xFFnn")


def request_body(command: int, password: int | None, data: bytes = b"") -> bytes:
    """`CMD [PWD] DATA`; 0xFC (device type) is the one command sent without a password."""
    body = command_bytes(command)
    if password is not None:
        if not 0 <= password <= 0xFFFFFFFF:
            raise FrameError(f"password must fit 4 bytes, got {password}")
        body += password.to_bytes(4, "little")
    return body + data


def encode_frame(body: bytes) -> bytes:
    if not body:
        raise FrameError("empty frame body")
    if len(body) > MAX_BODY:
        raise FrameError(f"frame body of {len(body)} bytes exceeds {MAX_BODY}")
    return bytes([STX, len(body)]) + body + bytes([lrc(body)])


def decode_frame(frame: bytes) -> bytes:
    """The body of one complete frame; FrameError on a bad STX, length or LRC."""
    if len(frame) < 4 or frame[0] != STX:
        raise FrameError(f"not a frame: {frame[:8].hex(' ')}")
    length = frame[1]
    if len(frame) != length + 3:
        raise FrameError(f"frame says {length} body bytes, has {len(frame) - 3}")
    body = frame[2 : 2 + length]
    if lrc(body) != frame[-1]:
        raise FrameError(f"bad LRC: 0x{frame[-1]:02X}, expected 0x{lrc(body):02X}")
    return body


class Reply(NamedTuple):  # a tuple: one per command
    command: int
    error: int  # 0 = success
    data: bytes  # what follows the error code


def parse_reply(body: bytes, expected: int) -> Reply:
    """Split a reply body and check it answers `expected`."""
    head = command_bytes(expected)
    if len(body) < len(head) + 1:
        raise FrameError(f"reply to 0x{expected:X} too short: {body.hex(' ')}")
    if body[: len(head)] != head:
        got = body[:2].hex(" ") if body[0] == 0xFF else f"{body[0]:02x}"
        raise FrameError(f"reply is for command {got}, expected 0x{expected:X}")
    return Reply(expected, body[len(head)], bytes(body[len(head) + 1 :]))
