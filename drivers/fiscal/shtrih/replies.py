"""Parsers for the Shtrih-M replies posbridge reads, and the device's mode numbers in words.

Each parser takes the reply's data (what follows the error byte) and raises FrameError
when it is shorter than the fields it reads; fields a model adds at the end are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.fiscal.shtrih.frames import FrameError

ENCODING = "cp1251"


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise FrameError(f"{what} reply too short: {len(data)} bytes, need {size}")


MODE_TEXT = {
    0: "ready",
    1: "data output",
    2: "shift open",
    3: "shift open, over 24 hours",
    4: "shift closed",
    5: "locked: wrong tax inspector password",
    6: "waiting for date confirmation",
    7: "decimal point change allowed",
    8: "document open",
    9: "technological reset allowed",
    10: "test run",
    11: "printing full fiscal report",
    12: "printing EJ report",
    13: "slip document",
    14: "printing slip document",
    15: "slip document ready",
}

SUBMODE_TEXT = {
    0: "",
    1: "paper out (idle)",
    2: "paper out (while printing)",
    3: "waiting for continue-print after paper out",
    4: "printing a long report",
    5: "printing",
}

FLAG_RECEIPT_PAPER = 1 << 7  # 1 = paper in the receipt station
FLAG_COVER_OPEN = 1 << 10  # 1 = lid up


@dataclass(frozen=True)
class DeviceStatus:
    """What 0x10 / 0x11 say: mode and submode, and the flags word."""

    mode: int
    submode: int
    flags: int
    document_number: int | None = None  # 0x11 only
    shift_number: int | None = None  # 0x11 only

    @property
    def mode_text(self) -> str:
        base = MODE_TEXT.get(self.mode, f"mode {self.mode}")
        sub = SUBMODE_TEXT.get(self.submode, f"submode {self.submode}")
        return f"{base}, {sub}" if sub else base

    @property
    def paper_present(self) -> bool:
        return bool(self.flags & FLAG_RECEIPT_PAPER) and self.submode not in (1, 2, 3)

    @property
    def cover_open(self) -> bool:
        return bool(self.flags & FLAG_COVER_OPEN)


def parse_short_status(data: bytes) -> DeviceStatus:
    """operator(1) flags(2) mode(1) submode(1) ... (mode's high nibble is a detail)."""
    _need(data, 5, "short status")
    flags = int.from_bytes(data[1:3], "little")
    return DeviceStatus(mode=data[3] & 0x0F, submode=data[4], flags=flags)


def parse_full_status(data: bytes) -> DeviceStatus:
    """operator(1) fw(2) build(2) date(3) number(1) doc(2) flags(2) mode(1) submode(1) ..."""
    _need(data, 15, "full status")
    shift = int.from_bytes(data[34:36], "little") if len(data) >= 36 else None
    return DeviceStatus(
        mode=data[13] & 0x0F,
        submode=data[14],
        flags=int.from_bytes(data[11:13], "little"),
        document_number=int.from_bytes(data[9:11], "little"),
        shift_number=shift,
    )


@dataclass(frozen=True)
class DeviceType:
    type: int
    subtype: int
    protocol: int
    subprotocol: int
    model: int
    language: int
    name: str


def parse_device_type(data: bytes) -> DeviceType:
    _need(data, 6, "device type")
    name = data[6:].split(b"\0", 1)[0].decode(ENCODING, errors="replace").strip()
    kind, subtype, protocol, subprotocol, model, language = data[:6]
    return DeviceType(kind, subtype, protocol, subprotocol, model, language, name)


def parse_font_width(data: bytes) -> int:
    """Characters per line: print width in dots over the character's width in dots."""
    _need(data, 3, "font info")
    paper = int.from_bytes(data[0:2], "little")
    char = data[2]
    if char == 0 or paper < char:
        raise FrameError(f"font info makes no sense: {paper} dots wide, {char} per character")
    return paper // char


@dataclass(frozen=True)
class CloseReply:
    change: int  # kopecks
    document_number: int
    fiscal_sign: int


def parse_close_v2(data: bytes) -> CloseReply:
    """change(5) FD number(4) fiscal sign(4) [date-time(5)]."""
    _need(data, 13, "extended close")
    return CloseReply(
        change=int.from_bytes(data[0:5], "little"),
        document_number=int.from_bytes(data[5:9], "little"),
        fiscal_sign=int.from_bytes(data[9:13], "little"),
    )


def parse_close(data: bytes) -> int:
    """operator(1) change(5): the change in kopecks."""
    _need(data, 6, "close")
    return int.from_bytes(data[1:6], "little")


@dataclass(frozen=True)
class FnStatus:
    life_state: int
    current_document: int
    shift_open: bool
    warnings: int
    serial: str
    last_document: int


def parse_fn_status(data: bytes) -> FnStatus:
    """life(1) document(1) data(1) shift(1) warnings(1) date-time(5) serial(16) last FD(4)."""
    _need(data, 30, "FN status")
    return FnStatus(
        life_state=data[0],
        current_document=data[1],
        shift_open=data[3] == 1,
        warnings=data[4],
        serial=data[10:26].split(b"\0", 1)[0].decode("ascii", errors="replace"),
        last_document=int.from_bytes(data[26:30], "little"),
    )


FN_WARNING_MEMORY_FULL = 1 << 2  # FN memory 90 % full


@dataclass(frozen=True)
class FoundDocument:
    type: int
    number: int
    fiscal_sign: int


def parse_found_document(data: bytes) -> FoundDocument:
    """type(1) OFD receipt(1) date-time(5) FD number(4) fiscal sign(4) ..."""
    _need(data, 15, "FN document")
    return FoundDocument(
        type=data[0],
        number=int.from_bytes(data[7:11], "little"),
        fiscal_sign=int.from_bytes(data[11:15], "little"),
    )
