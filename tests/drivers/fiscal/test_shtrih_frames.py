"""Frames and LRC against vectors worked out by hand from the vendor's protocol text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.fiscal.shtrih.frames import (
    FrameError,
    command_bytes,
    decode_frame,
    encode_frame,
    lrc,
    parse_reply,
    request_body,
)


def test_short_status_frame_matches_the_vendor_example() -> None:
    # "02 05 10 1E 00 00 00 0B": short status with password 30; LRC = 05^10^1E = 0B
    body = request_body(0x10, 30)
    assert body == bytes.fromhex("10 1e 00 00 00")
    assert encode_frame(body) == bytes.fromhex("02 05 10 1e 00 00 00 0b")


def test_lrc_covers_len_and_every_body_byte() -> None:
    body = bytes.fromhex("ff 46 1e 00 00 00")
    assert lrc(body) == 6 ^ 0xFF ^ 0x46 ^ 0x1E
    # one flipped bit anywhere after STX changes the LRC
    for i in range(len(body)):
        flipped = bytearray(body)
        flipped[i] ^= 0x01
        assert lrc(bytes(flipped)) != lrc(body)


@given(st.binary(min_size=1, max_size=255))
def test_lrc_equals_the_byte_by_byte_xor_at_every_length(body: bytes) -> None:
    expected = len(body)
    for byte in body:
        expected ^= byte
    assert lrc(body) == expected & 0xFF


def test_two_byte_commands_go_big_endian_and_device_type_has_no_password() -> None:
    assert command_bytes(0xFF46) == b"\xff\x46"
    assert command_bytes(0x17) == b"\x17"
    assert request_body(0xFC, None) == b"\xfc"
    assert request_body(0xFF45, 0x01020304)[:6] == bytes.fromhex("ff 45 04 03 02 01")
    with pytest.raises(FrameError, match="0x1234"):
        command_bytes(0x1234)


def test_decode_round_trips_and_rejects_damage() -> None:
    frame = encode_frame(b"\x10\x00\x1e")
    assert decode_frame(frame) == b"\x10\x00\x1e"
    bad = frame[:-1] + bytes([frame[-1] ^ 0x40])
    with pytest.raises(FrameError, match="bad LRC"):
        decode_frame(bad)
    with pytest.raises(FrameError, match="says 3 body bytes"):
        decode_frame(frame[:-2])
    with pytest.raises(FrameError, match="exceeds 255"):
        encode_frame(bytes(256))


def test_reply_is_split_and_checked_against_the_command() -> None:
    reply = parse_reply(bytes.fromhex("ff 45 00 aa bb"), 0xFF45)
    assert (reply.command, reply.error, reply.data) == (0xFF45, 0, b"\xaa\xbb")
    assert parse_reply(b"\x17\x6b", 0x17).error == 0x6B
    with pytest.raises(FrameError, match="expected 0x17"):
        parse_reply(b"\x10\x00\x1e", 0x17)
    with pytest.raises(FrameError, match="too short"):
        parse_reply(b"\xff\x46", 0xFF46)
