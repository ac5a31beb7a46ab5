"""A PNG of a receipt, so a technician can check layout and Cyrillic without a printer.

Drawn from the same lines as the text preview, one character per grid cell, in a
monospace TrueType font that has Cyrillic (DejaVu Sans Mono from `fonts-dejavu-core`
first).  Without such a font it falls back to Pillow's built-in font and says so: that
font has no Cyrillic, so Russian text would come out as boxes.  Bold blocks are drawn
bold, double-size blocks twice as large.  Barcodes and QR codes are drawn for real with
qrcode and python-barcode (python-escpos depends on both) so the preview scans; a code they
cannot draw, or one wider than the paper, is a framed placeholder line with its data.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import barcode  # type: ignore[import-untyped]
import qrcode  # type: ignore[import-untyped]
from barcode.writer import ImageWriter  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont
from qrcode import constants  # type: ignore[import-untyped]

from bridge.receipts.render import Row, rows
from drivers.printer.document import Align, Barcode, QRCode, Receipt

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage
    from PIL.ImageFont import FreeTypeFont

FONT_SIZE = 20
# (regular, bold) file names, looked up in the system font folders by Pillow.
CANDIDATES: list[tuple[str, str]] = [
    ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"),
    ("NotoSansMono-Regular.ttf", "NotoSansMono-Bold.ttf"),
    ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf"),
    ("FreeMono.ttf", "FreeMonoBold.ttf"),
]
NO_FONT_WARNING = (
    "no monospace TrueType font with Cyrillic found (install the apt package "
    "fonts-dejavu-core, or pass --font FILE); using Pillow's built-in font, "
    "so Cyrillic letters in the PNG will be boxes"
)


class PreviewError(RuntimeError):
    """The PNG cannot be drawn (Pillow missing, font unreadable, file not writable)."""


@dataclass(frozen=True)
class Fonts:
    regular: FreeTypeFont | ImageFont.ImageFont
    bold: FreeTypeFont | ImageFont.ImageFont | None
    name: str
    warning: str | None = None


@dataclass(frozen=True)
class PngInfo:
    path: Path
    width: int
    height: int
    cell_width: int
    line_height: int
    font: str
    warning: str | None


def has_cyrillic(font: FreeTypeFont | ImageFont.ImageFont) -> bool:
    """True when 'Ж' is a real glyph, not the font's missing-glyph box."""
    missing = font.getmask("\U0010fffd")
    glyph = font.getmask("Ж")
    return glyph.getbbox() is not None and bytes(glyph) != bytes(missing)


def _truetype(name: str, size: int) -> FreeTypeFont | None:
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return None


def _fontconfig_candidates() -> list[str]:
    """Monospace fonts fontconfig says cover Russian, when fc-list is there."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        found = subprocess.run(
            [fc_list, ":spacing=mono:lang=ru", "file"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = [line.rstrip(": ") for line in found.splitlines() if line.strip()]
    return sorted(f for f in files if f.endswith((".ttf", ".otf")))


def load_fonts(explicit: str | Path | None = None, size: int = FONT_SIZE) -> Fonts:
    """The explicit font, else the first known monospace font with Cyrillic, else the default."""
    if explicit is not None:
        font = _truetype(str(explicit), size)
        if font is None:
            raise PreviewError(f"font {explicit} cannot be read as a TrueType/OpenType font")
        warning = None if has_cyrillic(font) else f"font {explicit} has no Cyrillic glyphs"
        return Fonts(font, None, Path(explicit).name, warning)
    for regular_name, bold_name in CANDIDATES:
        regular = _truetype(regular_name, size)
        if regular is not None and has_cyrillic(regular):
            return Fonts(regular, _truetype(bold_name, size), regular_name)
    for path in _fontconfig_candidates():
        regular = _truetype(path, size)
        if regular is not None and has_cyrillic(regular):
            return Fonts(regular, None, Path(path).name)
    return Fonts(ImageFont.load_default(size), None, "Pillow default", NO_FONT_WARNING)


_LIBRARY_BARCODES = {
    "EAN13": "ean13",
    "EAN8": "ean8",
    "UPCA": "upca",
    "CODE128": "code128",
    "CODE39": "code39",
    "ITF": "itf",
    "CODABAR": "codabar",
    "NW7": "codabar",
}
_DOTS_PER_CELL = 12  # font A is 12 printer dots wide: converts dot sizes to preview pixels


def _qr_image(block: QRCode, cell: int, room: int) -> PILImage | None:
    levels = {
        "L": constants.ERROR_CORRECT_L,
        "M": constants.ERROR_CORRECT_M,
        "Q": constants.ERROR_CORRECT_Q,
        "H": constants.ERROR_CORRECT_H,
    }
    qr = qrcode.QRCode(border=2, error_correction=levels[block.error_correction.upper()])
    qr.add_data(block.data.encode("utf-8"))
    qr.make(fit=True)
    modules = qr.modules_count + 2 * qr.border
    qr.box_size = min(max(1, round(block.module_size * cell / _DOTS_PER_CELL)), room // modules)
    if qr.box_size < 1:
        return None
    return qr.make_image().get_image().convert("L")  # type: ignore[no-any-return]


def _barcode_image(block: Barcode, cell: int, room: int) -> PILImage | None:
    key = block.symbology.upper().replace("-", "").replace(" ", "").replace("_", "")
    if key not in _LIBRARY_BARCODES:
        return None
    dpi = 254  # 0.1 mm per pixel
    module = max(1, round(block.module_width * cell / _DOTS_PER_CELL))
    for pixels in dict.fromkeys((module, 1)):
        image = barcode.get(_LIBRARY_BARCODES[key], block.data, writer=ImageWriter()).render(
            {
                "module_width": pixels * 0.1,
                "module_height": block.height * cell / _DOTS_PER_CELL * 0.1,
                "dpi": dpi,
                "quiet_zone": 2.0,
                "write_text": False,  # drawn below in the receipt's font instead
            }
        )
        if image.width <= room:
            return image.convert("L")  # type: ignore[no-any-return]
    return None


def code_image(block: Barcode | QRCode, cell: int, room: int) -> PILImage | None:
    """A scannable picture of the code no wider than `room`, or None (a placeholder is drawn)."""
    try:
        if isinstance(block, QRCode):
            return _qr_image(block, cell, room)
        return _barcode_image(block, cell, room)
    except ImportError:
        return None
    except Exception:  # a library refusing odd data must not cost the whole preview
        return None


def write_png(
    receipt: Receipt, columns: int, path: Path, *, font: str | Path | None = None
) -> PngInfo:
    """Draw the receipt; barcodes and QR codes are real (qrcode, python-barcode) when possible."""
    fonts = load_fonts(font)
    big = load_fonts(font, FONT_SIZE * 2) if any(r.double for r in rows(receipt, columns)) else None
    cell = math.ceil(fonts.regular.getlength("M"))
    line = math.ceil(FONT_SIZE * 1.3)
    margin = cell
    room = columns * cell
    layout: list[Row | tuple[PILImage, Align]] = []
    for block in receipt.blocks:
        picture = code_image(block, cell, room) if isinstance(block, Barcode | QRCode) else None
        if picture is not None and isinstance(block, Barcode | QRCode):
            layout.append((picture, block.align))
            if isinstance(block, Barcode) and block.human_readable:
                layout.append(Row(block.data.center(columns).rstrip()))
        else:
            layout.extend(rows(Receipt([block]), columns))
    width = room + 2 * margin
    height = 2 * margin + sum(
        line * (2 if item.double else 1) if isinstance(item, Row) else item[0].height + line // 2
        for item in layout
    )
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    y = margin
    for item in layout:
        if not isinstance(item, Row):
            picture, align = item
            spare = room - picture.width
            x = margin + {Align.LEFT: 0, Align.CENTER: spare // 2, Align.RIGHT: spare}[align]
            image.paste(picture, (x, y + line // 4))
            y += picture.height + line // 2
            continue
        row = item
        scale = 2 if row.double else 1
        source = big if (row.double and big is not None) else fonts
        face = source.bold if (row.bold and source.bold is not None) else source.regular
        stroke = 1 if (row.bold and source.bold is None) else 0
        if row.code:
            draw.rectangle((margin, y + 1, width - margin - 1, y + line - 2), fill=235, outline=120)
        text, start = row.text, 0
        if row.double:  # the text preview pads in single cells; place doubled cells here
            text = row.text.strip()
            free = max(columns - 2 * len(text), 0)
            start = {Align.LEFT: 0, Align.CENTER: free // 2, Align.RIGHT: free}[row.align]
        for i, char in enumerate(text):
            if char != " ":
                x = margin + (start + i * scale) * cell
                draw.text((x, y), char, font=face, fill=0, stroke_width=stroke, stroke_fill=0)
        y += line * scale
    try:
        image.save(path, format="PNG")
    except OSError as exc:
        raise PreviewError(f"cannot write {path}: {exc.strerror or exc}") from None
    return PngInfo(path, width, height, cell, line, fonts.name, fonts.warning)
