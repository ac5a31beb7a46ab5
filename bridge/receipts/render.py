"""Receipts for the configured printer: its render target, the ESC/POS bytes and the text.

The code page is CP866 unless the printer's config says otherwise; its ESC t slot comes
from the printer profile, or from `codepage_slot` in the config when the profile is wrong
for the model at hand.  The receipt's column count (32/42/48) picks font B on 58 mm paper
when font A has too few columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from drivers.printer.document import (
    Align,
    Barcode,
    Pair,
    QRCode,
    Receipt,
    Text,
    render_escpos,
    render_text,
)
from drivers.printer.profile import (
    STANDARD_COLUMNS,
    PrinterConfig,
    ProfileError,
    RenderTarget,
)

if TYPE_CHECKING:
    from bridge.config import Config, DeviceSettings
    from bridge.receipts.loyalty_block import LoyaltyBlock


class ReceiptRenderError(ValueError):
    """The printer settings cannot render a receipt; the message names the setting."""


# PrinterConfig's field -> the key a technician writes in a [[devices]] printer entry
_KEYS = {"code_page": "codepage", "code_page_slot": "codepage_slot", "paper_width_mm": "paper_mm"}


def printer_config(columns: int, device: DeviceSettings | None = None) -> PrinterConfig:
    paper = device.paper_mm if device is not None else (80 if columns > 42 else 58)
    font = "a" if STANDARD_COLUMNS[(paper, "a")] >= columns else "b"
    try:
        return PrinterConfig(
            profile=(device.profile if device is not None and device.profile else "default"),
            paper_width_mm=paper,
            font=font,
            code_page=device.codepage if device is not None else "CP866",
            code_page_slot=device.codepage_slot if device is not None else None,
            columns=columns,
        )
    except ValidationError as exc:
        name = device.name if device is not None else "default printer"
        problems = "; ".join(
            f"{_KEYS.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'printer'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ReceiptRenderError(f"printer {name}: {problems}") from None


def render_target(columns: int, device: DeviceSettings | None = None) -> RenderTarget:
    try:
        return RenderTarget.from_config(printer_config(columns, device))
    except ProfileError as exc:
        name = device.name if device is not None else "default printer"
        message = str(exc).replace("code_page_slot in the printer config", "its codepage_slot")
        raise ReceiptRenderError(f"printer {name}: {message}") from None


def receipt_printer(config: Config) -> DeviceSettings | None:
    """The printer named by `[receipt] printer`, if any."""
    if config.receipt.printer is None:
        return None
    return config.device(config.receipt.printer)


@dataclass(frozen=True)
class Row:
    """One printed line and the style of the block it came from (for the PNG)."""

    text: str
    bold: bool = False
    double: bool = False
    code: bool = False  # a barcode or QR placeholder
    align: Align = Align.LEFT


def rows(receipt: Receipt, columns: int) -> list[Row]:
    """The lines of the text preview (`render_text`), each with the style of its block."""
    out: list[Row] = []
    for block in receipt.blocks:
        code = isinstance(block, Barcode | QRCode)
        bold = isinstance(block, Text | Pair) and block.bold
        double = isinstance(block, Text) and block.double
        align = block.align if isinstance(block, Text) else Align.LEFT
        out.extend(
            Row(line, bold, double, code, align) for line in render_text(Receipt([block]), columns)
        )
    return out


def escpos_bytes(receipt: Receipt, target: RenderTarget) -> bytes:
    return render_escpos(receipt, target)


def unprintable(lines: list[str], codec: str) -> list[str]:
    """Characters the printer's code page lacks (they would print as '?'), in order of use."""
    missing: dict[str, None] = {}
    for line in lines:
        for char in line:
            try:
                char.encode(codec)
            except UnicodeEncodeError:
                missing[char] = None
    return list(missing)


def loyalty_outputs(block: LoyaltyBlock, config: Config) -> tuple[list[str], bytes]:
    """The block as the register's config wants it: text lines and ESC/POS bytes."""
    columns, language = config.receipt.columns, config.receipt.language
    receipt = block.to_receipt(language)
    target = render_target(columns, receipt_printer(config))
    return render_text(receipt, columns), escpos_bytes(receipt, target)
