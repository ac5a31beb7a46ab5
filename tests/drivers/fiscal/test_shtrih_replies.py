"""Reply parsers, against reply layouts worked out from the vendor's protocol text."""

from __future__ import annotations

import pytest

from drivers.fiscal.shtrih import replies
from drivers.fiscal.shtrih.frames import FrameError


def test_short_status_reply() -> None:
    # operator 30, flags: paper present (bit 7) + lid up (bit 10), mode 0x12 (2 + detail), submode 0
    data = (
        bytes([30]) + (0x0480).to_bytes(2, "little") + bytes([0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    )
    status = replies.parse_short_status(data)
    assert (status.mode, status.submode) == (2, 0)
    assert status.paper_present and status.cover_open
    assert status.mode_text == "shift open"
    out = replies.parse_short_status(bytes([30, 0, 0, 4, 1]))
    assert not out.paper_present and not out.cover_open
    assert out.mode_text == "shift closed, paper out (idle)"
    with pytest.raises(FrameError, match="short status"):
        replies.parse_short_status(b"\x1e\x00")


def test_full_status_reply() -> None:
    data = bytearray(46)
    data[0] = 30
    data[9:11] = (1234).to_bytes(2, "little")  # document number
    data[11:13] = (0x0080).to_bytes(2, "little")
    data[13], data[14] = 8, 0
    data[34:36] = (17).to_bytes(2, "little")  # shift number
    status = replies.parse_full_status(bytes(data))
    assert (status.mode, status.document_number, status.shift_number) == (8, 1234, 17)
    assert status.paper_present and not status.cover_open


def test_device_type_font_and_close_replies() -> None:
    device = replies.parse_device_type(
        bytes([0, 0, 1, 0, 19, 0]) + "ШТРИХ-М-01Ф\0".encode("cp1251")
    )
    assert (device.model, device.name) == (19, "ШТРИХ-М-01Ф")
    assert replies.parse_font_width((576).to_bytes(2, "little") + bytes([12, 24, 7])) == 48
    with pytest.raises(FrameError, match="makes no sense"):
        replies.parse_font_width(bytes([0, 0, 0, 0, 0]))
    close = replies.parse_close_v2(
        (150).to_bytes(5, "little")
        + (42).to_bytes(4, "little")
        + (3_900_123_456).to_bytes(4, "little")
        + bytes([26, 12, 2, 15, 30])
    )
    assert (close.change, close.document_number, close.fiscal_sign) == (150, 42, 3_900_123_456)
    assert replies.parse_close(bytes([30]) + (250).to_bytes(5, "little")) == 250


def test_fn_status_and_found_document_replies() -> None:
    data = bytes([3, 0, 0, 1, 0x04]) + bytes(5) + b"9999078900012345" + (77).to_bytes(4, "little")
    fn = replies.parse_fn_status(data)
    assert (fn.shift_open, fn.serial, fn.last_document) == (True, "9999078900012345", 77)
    assert fn.warnings & replies.FN_WARNING_MEMORY_FULL
    found = replies.parse_found_document(
        bytes([3, 1]) + bytes(5) + (77).to_bytes(4, "little") + (123456).to_bytes(4, "little")
    )
    assert (found.type, found.number, found.fiscal_sign) == (3, 77, 123456)
