"""An ESC/POS byte stream cut into commands, so a relay can act at a cut and nowhere else.

A receipt a POS sends holds raster images, 2D codes and barcodes whose data may contain any
byte, 1D 56 ("GS V", the cut) included.  Only a parser that knows how long every command is
can tell a cut from image data, so this one reads each command's length from its header
(GS v 0 xL xH yL yH, GS ( k pL pH, GS k m n, ...) and passes the data it announces as data.
A command it does not know leaves it unable to tell where the next one starts: it says so
(`lost`) and finds no cut until the next ESC @ re-synchronises it, so a relay fails open
(passes bytes unchanged) instead of cutting an image in two.

It holds back only an incomplete command header (a few bytes the printer could not act on
yet either); everything else comes out of `feed` as soon as it goes in.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Iterator
from dataclasses import dataclass

ESC, GS, FS, DLE, DC2, NUL, LF, CR, FF = 0x1B, 0x1D, 0x1C, 0x10, 0x12, 0x00, 0x0A, 0x0D, 0x0C
MAX_HEADER = 4096  # ESC & and the NUL-terminated commands are held whole; none is longer
SMALL = 16  # commands up to this long are held until complete; longer ones stream their data


class Kind(enum.Enum):
    TEXT = "text"  # printable bytes (in the printer's code page)
    CONTROL = "control"  # one control byte: LF, CR, HT, FF, CAN, ...
    COMMAND = "command"  # a whole command, or its start when its data follows as DATA
    DATA = "data"  # more of the data a COMMAND announced
    CUT = "cut"  # GS V in any form (also the old ESC i / ESC m)
    UNKNOWN = "unknown"  # a command this parser cannot measure: bytes pass, `lost` is set


@dataclass(frozen=True)
class Token:
    kind: Kind
    data: bytes


_NEED = -1  # more header bytes are needed to know the length
_UNKNOWN = -2

# ESC x: total length of the command, for the fixed ones
_ESC_FIXED = {
    0x0C: 2,  # ESC FF  print in page mode
    0x20: 3,  # ESC SP n
    0x21: 3,  # ESC ! n
    0x24: 4,  # ESC $ nL nH
    0x25: 3,  # ESC % n
    0x2D: 3,  # ESC - n
    0x32: 2,  # ESC 2
    0x33: 3,  # ESC 3 n
    0x37: 5,  # ESC 7 n1 n2 n3  (heating, on many Chinese models)
    0x38: 4,  # ESC 8 n1 n2  (sleep, likewise)
    0x3C: 2,  # ESC <
    0x3D: 3,  # ESC = n
    0x3F: 3,  # ESC ? n
    0x40: 2,  # ESC @
    0x42: 4,  # ESC B n t  (buzzer on many Chinese models)
    0x45: 3,  # ESC E n
    0x47: 3,  # ESC G n
    0x4A: 3,  # ESC J n
    0x4B: 3,  # ESC K n
    0x4C: 2,  # ESC L  page mode
    0x4D: 3,  # ESC M n
    0x52: 3,  # ESC R n
    0x53: 2,  # ESC S  standard mode
    0x54: 3,  # ESC T n
    0x55: 3,  # ESC U n
    0x56: 3,  # ESC V n
    0x57: 10,  # ESC W xL xH yL yH dxL dxH dyL dyH
    0x5C: 4,  # ESC \ nL nH
    0x61: 3,  # ESC a n
    0x63: 4,  # ESC c x n
    0x64: 3,  # ESC d n
    0x65: 3,  # ESC e n
    0x69: 2,  # ESC i  (cut)
    0x6D: 2,  # ESC m  (cut)
    0x70: 5,  # ESC p m t1 t2
    0x72: 3,  # ESC r n
    0x74: 3,  # ESC t n
    0x75: 3,  # ESC u n
    0x76: 2,  # ESC v
    0x7B: 3,  # ESC { n
}

_GS_FIXED = {
    0x0C: 2,  # GS FF
    0x21: 3,  # GS ! n
    0x23: 3,  # GS # n
    0x24: 4,  # GS $ nL nH
    0x2F: 3,  # GS / m
    0x3A: 2,  # GS :
    0x42: 3,  # GS B n
    0x45: 3,  # GS E n
    0x48: 3,  # GS H n
    0x49: 3,  # GS I n
    0x4C: 4,  # GS L nL nH
    0x50: 4,  # GS P x y
    0x54: 3,  # GS T n
    0x57: 4,  # GS W nL nH
    0x5A: 3,  # GS Z n
    0x5C: 4,  # GS \ nL nH
    0x5E: 5,  # GS ^ r t m
    0x61: 3,  # GS a n  (ASB)
    0x62: 3,  # GS b n
    0x63: 2,  # GS c
    0x66: 3,  # GS f n
    0x67: 6,  # GS g 0|2 m aL aH
    0x68: 3,  # GS h n
    0x6A: 3,  # GS j n  (ASB for ink)
    0x72: 3,  # GS r n
    0x77: 3,  # GS w n
    0x7A: 5,  # GS z 0 t1 t2
}

_FS_FIXED = {
    0x21: 3,  # FS ! n
    0x26: 2,  # FS &
    0x2D: 3,  # FS - n
    0x2E: 2,  # FS .
    0x3F: 4,  # FS ? c1 c2
    0x43: 3,  # FS C n
    0x53: 4,  # FS S n1 n2
    0x57: 3,  # FS W n
    0x70: 4,  # FS p n m
}

_CUT_FORMS_SHORT = (0, 1, 48, 49)  # GS V m
_CUT_FORMS_FEED = (65, 66, 97, 98, 103, 104)  # GS V m n


def _le(head: bytes | bytearray, start: int, count: int) -> int:
    return int.from_bytes(head[start : start + count], "little")


def measure(head: bytes | bytearray) -> int:
    """The total length of the command `head` starts with (header and data), `_NEED` if
    more bytes must be seen first, or `_UNKNOWN`.  `head[0]` is ESC, GS, FS, DLE or DC2."""
    n = len(head)
    if n < 2:
        return _NEED
    lead, code = head[0], head[1]
    if lead == ESC:
        return _measure_esc(head, code, n)
    if lead == GS:
        return _measure_gs(head, code, n)
    if lead == FS:
        return _measure_fs(head, code, n)
    if lead == DLE:
        return _measure_dle(head, code, n)
    if lead == DC2:
        return {0x23: 3, 0x54: 2}.get(code, _UNKNOWN)  # DC2 # n density, DC2 T self-test
    return _UNKNOWN


def _measure_esc(head: bytes | bytearray, code: int, n: int) -> int:
    if code in _ESC_FIXED:
        return _ESC_FIXED[code]
    if code == 0x2A:  # ESC * m nL nH d1..dk
        if n < 5:
            return _NEED
        width = 3 if head[2] in (32, 33) else 1
        return 5 + width * _le(head, 3, 2)
    if code == 0x28:  # ESC ( fn pL pH ...
        return _NEED if n < 5 else 5 + _le(head, 3, 2)
    if code == 0x44:  # ESC D n1..nk NUL
        return _until_nul(head, 2)
    if code == 0x26:  # ESC & y c1 c2 [x d1..d(y*x)]...
        return _measure_user_chars(head, n)
    if code == 0x5A:  # ESC Z m n k dL dH d1..dn  (QR on many Chinese models)
        return _NEED if n < 7 else 7 + _le(head, 5, 2)
    return _UNKNOWN


def _measure_user_chars(head: bytes | bytearray, n: int) -> int:
    if n < 5:
        return _NEED
    y, first, last = head[2], head[3], head[4]
    if last < first:
        return 5
    at = 5
    for _ in range(last - first + 1):
        if at >= n:
            return _NEED
        at += 1 + y * head[at]
    return at


def _measure_gs(head: bytes | bytearray, code: int, n: int) -> int:
    if code in _GS_FIXED:
        return _GS_FIXED[code]
    if code == 0x56:  # GS V m [n]
        if n < 3:
            return _NEED
        if head[2] in _CUT_FORMS_SHORT:
            return 3
        return 4 if head[2] in _CUT_FORMS_FEED else _UNKNOWN
    if code == 0x28:  # GS ( fn pL pH ...  (GS ( k 2D codes, GS ( L graphics, ...)
        return _NEED if n < 5 else 5 + _le(head, 3, 2)
    if code == 0x38:  # GS 8 L p1 p2 p3 p4 ...  (GS ( L with a 4-byte length)
        if n < 7:
            return _NEED
        return 7 + _le(head, 3, 4) if head[2] == 0x4C else _UNKNOWN
    if code == 0x76:  # GS v 0 m xL xH yL yH d1..dk  (raster image)
        return _NEED if n < 8 else 8 + _le(head, 4, 2) * _le(head, 6, 2)
    if code == 0x2A:  # GS * x y d1..d(x*y*8)
        return _NEED if n < 4 else 4 + head[2] * head[3] * 8
    if code == 0x6B:  # GS k m ...  (barcode)
        if n < 3:
            return _NEED
        if head[2] <= 6:
            return _until_nul(head, 3)  # function A: data up to NUL
        return _NEED if n < 4 else 4 + head[3]  # function B: GS k m n d1..dn
    if code == 0x43:  # GS C 0 n m | GS C 1 aL aH bL bH n r | GS C 2 nL nH (counter)
        if n < 3:
            return _NEED
        return {0x30: 5, 0x00: 5, 0x31: 9, 0x01: 9, 0x32: 5, 0x02: 5}.get(head[2], _UNKNOWN)
    return _UNKNOWN


def _measure_fs(head: bytes | bytearray, code: int, n: int) -> int:
    if code in _FS_FIXED:
        return _FS_FIXED[code]
    if code == 0x28:  # FS ( fn pL pH ...
        return _NEED if n < 5 else 5 + _le(head, 3, 2)
    if code == 0x67:  # FS g 1 m a1..a4 nL nH d1..dk | FS g 2 m a1..a4 nL nH (user NV memory)
        if n < 10:
            return _NEED
        return 10 + _le(head, 8, 2) if head[2] in (1, 0x31) else 10
    if code == 0x71:  # FS q n [xL xH yL yH d1..d(x*y*8)]... (NV images): measured as a whole
        if n < 3:
            return _NEED
        at = 3
        for _ in range(head[2]):
            if at + 4 > n:
                return _NEED
            at += 4 + _le(head, at, 2) * _le(head, at + 2, 2) * 8
            if at > MAX_HEADER:
                return _UNKNOWN
        return at
    return _UNKNOWN


def _measure_dle(head: bytes | bytearray, code: int, n: int) -> int:
    if code == 0x04:  # DLE EOT n [a]
        if n < 3:
            return _NEED
        return 4 if head[2] in (7, 8) else 3
    if code == 0x05:  # DLE ENQ n
        return 3
    if code == 0x14:  # DLE DC4 fn ...
        if n < 3:
            return _NEED
        return {1: 5, 2: 5, 3: 8, 7: 4, 8: 10}.get(head[2], _UNKNOWN)
    return _UNKNOWN


def _until_nul(head: bytes | bytearray, start: int) -> int:
    end = head.find(b"\x00", start)
    return _NEED if end < 0 else end + 1


def is_cut(command: bytes) -> bool:
    return command[:2] in (b"\x1dV", b"\x1bi", b"\x1bm")


class EscposStream:
    """Feed it the bytes a POS sends, get them back as tokens, in order and complete.

    Concatenating every token's `data` gives back exactly the bytes fed (less an incomplete
    header at the end, which comes out with the next feed, or from `flush`).
    """

    def __init__(self) -> None:
        self._head = bytearray()  # an incomplete command header, held back
        self._data_left = 0  # bytes of announced data still to come
        self.lost = False  # a command of unknown length was seen: no cut is trusted
        self.unknown_commands = 0

    @property
    def held(self) -> int:
        return len(self._head)

    def flush(self) -> bytes:
        """The held header, given up on (the relay is stopping or the POS went away)."""
        held, self._head = bytes(self._head), bytearray()
        return held

    def feed(self, data: bytes) -> Iterator[Token]:
        view = memoryview(data)
        at, end = 0, len(data)
        while at < end:
            if self._data_left:
                take = min(self._data_left, end - at)
                self._data_left -= take
                yield Token(Kind.DATA, bytes(view[at : at + take]))
                at += take
            elif self._head:
                at = yield from self._continue_head(view, at, end)
            else:
                at = yield from self._start(view, at, end)

    def _start(self, view: memoryview, at: int, end: int) -> Generator[Token, None, int]:
        byte = view[at]
        if byte >= 0x20:
            stop = at + 1
            while stop < end and view[stop] >= 0x20:
                stop += 1
            yield Token(Kind.TEXT, bytes(view[at:stop]))
            return stop
        if byte in (ESC, GS, FS, DLE, DC2):
            self._head.append(byte)
            return (yield from self._continue_head(view, at + 1, end))
        yield Token(Kind.CONTROL, bytes(view[at : at + 1]))
        return at + 1

    def _continue_head(self, view: memoryview, at: int, end: int) -> Generator[Token, None, int]:
        """Grow the held header byte by byte until its length is known."""
        while True:
            length = measure(self._head)
            if length == _UNKNOWN or (length == _NEED and len(self._head) >= MAX_HEADER):
                yield self._unknown()
                return at
            if length != _NEED and length <= len(self._head):
                command = bytes(self._head[:length])
                del self._head[:length]  # (nothing is left: the header grows a byte at a time)
                yield self._command(command)
                return at
            if length != _NEED:  # the header is known: its data can stream through
                take = min(length - len(self._head), end - at)
                self._head += view[at : at + take]
                if len(self._head) == length:
                    yield self._command(bytes(self._head))
                    self._head.clear()
                    return at + take
                if length > SMALL and not _held_whole(self._head):  # the rest is DATA
                    command = bytes(self._head)
                    self._data_left = length - len(self._head)
                    self._head.clear()
                    yield Token(Kind.COMMAND, command)
                return at + take
            if at >= end:
                return at
            self._head.append(view[at])
            at += 1

    def _command(self, command: bytes) -> Token:
        if command[:2] == b"\x1b@":
            self.lost = False  # ESC @ starts afresh: the printer and we agree again
        if is_cut(command):
            return Token(Kind.CUT, command)
        return Token(Kind.COMMAND, command)

    def _unknown(self) -> Token:
        self.lost = True
        self.unknown_commands += 1
        data, self._head = bytes(self._head), bytearray()
        return Token(Kind.UNKNOWN, data)


def _held_whole(head: bytearray) -> bool:
    """Commands kept whole even when long: their structure is read from all of them."""
    return bytes(head[:2]) in (b"\x1b&", b"\x1cq")
