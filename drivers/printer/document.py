"""Receipts as data: built once, rendered to ESC/POS bytes for a printer or to text for previews.

Callers (the POS API, the loyalty block) describe *what* a receipt says; this module owns
*how* that becomes bytes for a given width and code page.  Every ESC @ it emits is followed at
once by ESC t with the pinned slot, because ESC @ resets the code page to the printer's
default and Cyrillic would come out as box-drawing characters.  Text is sanitised: a control
byte inside a customer name must never reach the printer as a command.
"""

from __future__ import annotations

import enum
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field

from escpos.constants import BARCODE_TYPES, CD_KICK_2, CD_KICK_5

from drivers.check_digits import ean_valid
from drivers.printer.profile import RenderTarget

ESC = b"\x1b"
GS = b"\x1d"
INIT = ESC + b"@"
LF = b"\n"

# Typography that has no CP866 glyph, replaced with the nearest thing a till can print.
_SUBSTITUTES = str.maketrans(
    {
        "«": '"',
        "»": '"',
        "„": '"',
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": "-",
        "–": "-",
        "−": "-",
        "…": "...",
        "₽": "р.",
        "\u00a0": " ",
        "\t": " ",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class DocumentError(ValueError):
    """A receipt block cannot be printed as given; the message names the block and the value."""


class Align(enum.StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"

    @property
    def escpos(self) -> bytes:
        return ESC + b"a" + bytes([("left", "center", "right").index(self.value)])


def clean_text(text: str) -> str:
    """Printable text only: typographic substitutes, control characters become spaces."""
    return _CONTROL.sub(" ", text.translate(_SUBSTITUTES))


@dataclass(frozen=True)
class Text:
    text: str
    bold: bool = False
    double: bool = False  # double width and height
    align: Align = Align.LEFT
    underline: bool = False


@dataclass(frozen=True)
class Pair:
    """A label on the left and a value on the right of one line (totals, balances)."""

    left: str
    right: str
    bold: bool = False


@dataclass(frozen=True)
class Rule:
    char: str = "-"


@dataclass(frozen=True)
class Barcode:
    data: str
    symbology: str = "EAN13"
    height: int = 80
    module_width: int = 2
    human_readable: bool = True
    align: Align = Align.CENTER


@dataclass(frozen=True)
class QRCode:
    data: str
    module_size: int = 6
    error_correction: str = "M"
    align: Align = Align.CENTER


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True)
class Cut:
    partial: bool = False
    feed_lines: int = 4


@dataclass(frozen=True)
class DrawerKick:
    pin: int = 2


@dataclass(frozen=True)
class Reset:
    """ESC @ mid-document (rarely needed; the code page is re-sent after it)."""


Block = Text | Pair | Rule | Barcode | QRCode | Feed | Cut | DrawerKick | Reset

_BARCODE_NAMES: dict[str, str] = {
    name.replace("-", "").replace(" ", ""): name for name in BARCODE_TYPES["B"]
}
_QR_LEVELS = {"L": 48, "M": 49, "Q": 50, "H": 51}


def _barcode_name(symbology: str) -> str:
    key = symbology.upper().replace("-", "").replace(" ", "").replace("_", "")
    if key not in _BARCODE_NAMES:
        raise DocumentError(
            f"barcode symbology {symbology!r} is not supported; use one of "
            + ", ".join(sorted(BARCODE_TYPES["B"]))
        )
    return _BARCODE_NAMES[key]


def _check_barcode(block: Barcode) -> None:
    name = _barcode_name(block.symbology)
    data = block.data
    if not data:
        raise DocumentError(f"{name} barcode has no data")
    if name in ("EAN13", "EAN8", "UPC-A") and not ean_valid(data):
        raise DocumentError(f"{name} barcode {data!r} is not a valid code (digits or check digit)")
    if (name == "EAN13" and len(data) != 13) or (name == "EAN8" and len(data) != 8):
        raise DocumentError(f"{name} barcode {data!r} has the wrong length")
    if not data.isascii() or not data.isprintable():
        raise DocumentError(f"{name} barcode {data!r} must be printable ASCII")
    if len(data) > 253:
        raise DocumentError(f"{name} barcode data is {len(data)} bytes; the maximum is 253")
    if not 1 <= block.height <= 255:
        raise DocumentError(f"barcode height {block.height} is outside 1..255 dots")
    if not 2 <= block.module_width <= 6:
        raise DocumentError(f"barcode module width {block.module_width} is outside 2..6")


def _check_qr(block: QRCode) -> None:
    if not block.data:
        raise DocumentError("QR code has no data")
    if len(block.data.encode()) > 7089:
        raise DocumentError(f"QR code data is {len(block.data.encode())} bytes; too long")
    if not 1 <= block.module_size <= 16:
        raise DocumentError(f"QR module size {block.module_size} is outside 1..16")
    if block.error_correction.upper() not in _QR_LEVELS:
        raise DocumentError(f"QR error correction {block.error_correction!r}: use L, M, Q or H")


def _check(block: Block) -> None:
    if isinstance(block, Barcode):
        _check_barcode(block)
    elif isinstance(block, QRCode):
        _check_qr(block)
    elif isinstance(block, Feed) and not 0 <= block.lines <= 255:
        raise DocumentError(f"feed of {block.lines} lines is outside 0..255")
    elif isinstance(block, Cut) and not 0 <= block.feed_lines <= 255:
        raise DocumentError(f"cut feed of {block.feed_lines} lines is outside 0..255")
    elif isinstance(block, DrawerKick) and block.pin not in (2, 5):
        raise DocumentError(f"cash drawer pin {block.pin}: use 2 or 5")
    elif isinstance(block, Rule) and len(block.char) != 1:
        raise DocumentError(f"rule character {block.char!r} must be one character")


@dataclass
class Receipt:
    """A receipt under construction; each builder method checks its block and returns self."""

    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> Receipt:
        _check(block)
        self.blocks.append(block)
        return self

    def text(
        self,
        text: str,
        *,
        bold: bool = False,
        double: bool = False,
        align: Align | str = Align.LEFT,
        underline: bool = False,
    ) -> Receipt:
        return self.add(Text(text, bold, double, Align(align), underline))

    def bold(self, text: str, align: Align | str = Align.LEFT) -> Receipt:
        return self.text(text, bold=True, align=align)

    def double(self, text: str, align: Align | str = Align.CENTER) -> Receipt:
        return self.text(text, double=True, align=align)

    def pair(self, left: str, right: str, *, bold: bool = False) -> Receipt:
        return self.add(Pair(left, right, bold))

    def rule(self, char: str = "-") -> Receipt:
        return self.add(Rule(char))

    def barcode(self, data: str, symbology: str = "EAN13", **options: object) -> Receipt:
        return self.add(Barcode(data, symbology, **options))  # type: ignore[arg-type]

    def qr(self, data: str, **options: object) -> Receipt:
        return self.add(QRCode(data, **options))  # type: ignore[arg-type]

    def feed(self, lines: int = 1) -> Receipt:
        return self.add(Feed(lines))

    def cut(self, *, partial: bool = False, feed_lines: int = 4) -> Receipt:
        return self.add(Cut(partial, feed_lines))

    def kick_drawer(self, pin: int = 2) -> Receipt:
        return self.add(DrawerKick(pin))

    def reset(self) -> Receipt:
        return self.add(Reset())


# --- layout shared by both renderers ----------------------------------------------------------


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in clean_text_lines(text):
        lines.extend(textwrap.wrap(paragraph, width, drop_whitespace=True) or [""])
    return lines


def clean_text_lines(text: str) -> list[str]:
    """Split on CR/LF only: str.splitlines() would also split on GS, RS, FS and NEL."""
    return [clean_text(part) for part in re.split(r"\r\n|\r|\n", text)]


def _pair_lines(block: Pair, width: int) -> list[str]:
    left, right = clean_text(block.left).strip(), clean_text(block.right).strip()
    if len(right) >= width:
        return [*_wrap(left, width), right[:width].rjust(width), *_wrap(right[width:], width)]
    if len(left) + 1 + len(right) <= width:
        return [left + " " * (width - len(left) - len(right)) + right]
    head = _wrap(left, width)
    last = head[-1]
    if len(last) + 1 + len(right) <= width:
        return [*head[:-1], last + " " * (width - len(last) - len(right)) + right]
    return [*head, right.rjust(width)]


def _aligned(line: str, width: int, align: Align) -> str:
    if align is Align.CENTER:
        return line.center(width).rstrip()
    if align is Align.RIGHT:
        return line.rjust(width)
    return line


def block_lines(block: Text | Pair | Rule, columns: int) -> list[str]:
    """The lines a text-like block occupies, laid out to `columns` (halved for double width)."""
    if isinstance(block, Rule):
        return [block.char * columns]
    if isinstance(block, Pair):
        return _pair_lines(block, columns)
    width = columns // 2 if block.double else columns
    return _wrap(block.text, width)


# --- text preview -----------------------------------------------------------------------------


def render_text(receipt: Receipt, columns: int) -> list[str]:
    """The text preview: what the customer will read, one string per printed line, none
    wider than `columns`.  The one preview of the house: `ReceiptPrinter.preview`, the
    register's receipt files and `posbridge receipt preview` all show these lines."""
    out: list[str] = []
    for block in receipt.blocks:
        if isinstance(block, Text):  # double lines hold half as many characters
            out.extend(_aligned(line, columns, block.align) for line in block_lines(block, columns))
        elif isinstance(block, Pair | Rule):
            out.extend(block_lines(block, columns))
        elif isinstance(block, Barcode | QRCode):
            out.extend(_aligned(line, columns, block.align) for line in _code_label(block, columns))
        elif isinstance(block, Feed):
            out.extend([""] * block.lines)
        elif isinstance(block, Cut):
            out.extend([""] * block.feed_lines)
            out.append("=" * columns)
    return out


def _code_label(block: Barcode | QRCode, columns: int) -> list[str]:
    # a placeholder for the code, wrapped: a fiscal QR's payload is wider than the paper
    kind = "QR" if isinstance(block, QRCode) else _barcode_name(block.symbology)
    return textwrap.wrap(f"[{kind} {clean_text(block.data)}]", columns) or [f"[{kind}]"]


# --- ESC/POS ----------------------------------------------------------------------------------


def init_sequence(target: RenderTarget) -> bytes:
    """ESC @, then the pinned code page (ESC @ resets it), then the configured font."""
    font = ESC + b"M" + (b"\x01" if target.font == "b" else b"\x00")
    return INIT + ESC + b"t" + bytes([target.code_page_slot]) + font


def encode_text(text: str, target: RenderTarget) -> bytes:
    """Printable text in the target's code page; what it lacks prints as '?'."""
    return clean_text(text).encode(target.codec, errors="replace")


def _size(double: bool) -> bytes:
    return GS + b"!" + (b"\x11" if double else b"\x00")


def _text_bytes(block: Text | Pair | Rule, target: RenderTarget) -> Iterator[bytes]:
    align = block.align if isinstance(block, Text) else Align.LEFT
    bold = block.bold if isinstance(block, Text | Pair) else False
    double = isinstance(block, Text) and block.double
    underline = isinstance(block, Text) and block.underline
    yield align.escpos + _size(double)
    if bold:
        yield ESC + b"E\x01"
    if underline:
        yield ESC + b"-\x01"
    for line in block_lines(block, target.columns):
        yield encode_text(line, target) + LF
    if bold:
        yield ESC + b"E\x00"
    if underline:
        yield ESC + b"-\x00"
    if double:
        yield _size(False)


def _barcode_bytes(block: Barcode) -> bytes:
    name = _barcode_name(block.symbology)
    data = block.data
    if name == "CODE128" and not data.startswith("{"):
        data = "{B" + data  # code set B: printable ASCII
    payload = data.encode("ascii")
    return b"".join(
        (
            block.align.escpos,
            GS + b"h" + bytes([block.height]),
            GS + b"w" + bytes([block.module_width]),
            GS + b"H" + (b"\x02" if block.human_readable else b"\x00"),
            BARCODE_TYPES["B"][name] + bytes([len(payload)]) + payload,
            Align.LEFT.escpos,
        )
    )


def _qr_function(fn: int, data: bytes) -> bytes:
    size = len(data) + 2  # pL pH count cn and fn too
    return GS + b"(k" + bytes([size & 0xFF, size >> 8, 49, fn]) + data


def _qr_bytes(block: QRCode) -> bytes:
    payload = block.data.encode("utf-8")
    return b"".join(
        (
            block.align.escpos,
            _qr_function(65, b"\x32\x00"),  # model 2
            _qr_function(67, bytes([block.module_size])),
            _qr_function(69, bytes([_QR_LEVELS[block.error_correction.upper()]])),
            _qr_function(80, b"\x30" + payload),  # store
            _qr_function(81, b"\x30"),  # print
            LF,
            Align.LEFT.escpos,
        )
    )


def _cut_bytes(block: Cut, target: RenderTarget) -> bytes:
    partial = block.partial and target.profile.supports("paperPartCut")
    if not partial and not target.profile.supports("paperFullCut"):
        partial = target.profile.supports("paperPartCut")
    feed = ESC + b"d" + bytes([block.feed_lines]) if block.feed_lines else b""
    return feed + GS + b"V" + (b"\x01" if partial else b"\x00")


def render_escpos(receipt: Receipt, target: RenderTarget) -> bytes:
    """The whole receipt as one ESC/POS byte string, starting with ESC @ and the code page."""
    parts: list[bytes] = [init_sequence(target)]
    for block in receipt.blocks:
        if isinstance(block, Text | Pair | Rule):
            parts.extend(_text_bytes(block, target))
        elif isinstance(block, Barcode):
            parts.append(_barcode_bytes(block))
        elif isinstance(block, QRCode):
            parts.append(_qr_bytes(block))
        elif isinstance(block, Feed):
            parts.append(ESC + b"d" + bytes([block.lines]))
        elif isinstance(block, Cut):
            parts.append(_cut_bytes(block, target))
        elif isinstance(block, DrawerKick):
            parts.append(CD_KICK_2 if block.pin == 2 else CD_KICK_5)
        elif isinstance(block, Reset):
            parts.append(init_sequence(target))
    return b"".join(parts)
