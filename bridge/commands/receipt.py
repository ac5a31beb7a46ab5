"""See a receipt without a printer: its text, a PNG, and the ESC/POS bytes a printer would get.

`preview` renders a sample cheque with the loyalty block of one scenario (normal, offline,
blocked card, anonymous), or a receipt described in a JSON file, to DIR/receipt.txt,
DIR/receipt.png and DIR/receipt.bin (send that file to a printer to compare).  Language
and width come from the options, else the [receipt] section of the config, else ru and 42;
the code page and its ESC t slot come from the configured receipt printer, else CP866 with
the default profile's slot.  Card numbers are masked in every output.

A JSON file holds an object with any of: "header" (lines), "cheque" (the contract's cheque,
as for `posbridge purchase`), "discount", "loyalty" {"state": normal|offline|blocked|anonymous,
"card", "balanceBefore", "balanceAfter", "accrued", "redeemed", "chequeMessage"},
"barcodes" [{"data", "symbology"}], "qr".  Amounts are strings such as "15.00".
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.commands import UsageError

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.receipts.sample import ReceiptDescription

SCENARIOS = ("normal", "offline", "blocked", "anonymous")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pv = sub.add_parser(
        "preview",
        help="write receipt.txt, receipt.png and receipt.bin for a sample or a file",
        description=__doc__,
    )
    pv.add_argument("--language", choices=["ru", "en"], help="default: [receipt] language or ru")
    pv.add_argument(
        "--columns", type=int, choices=[32, 42, 48], help="default: [receipt] columns or 42"
    )
    source = pv.add_mutually_exclusive_group()
    source.add_argument("--scenario", choices=SCENARIOS, help="sample cheque (default normal)")
    source.add_argument("--from-json", metavar="FILE", help="a receipt in JSON (keys above)")
    pv.add_argument("--out", metavar="DIR", default=".", help="output folder (default: here)")
    pv.add_argument("--font", metavar="FILE", help="monospace TTF for the PNG (needs Cyrillic)")


def _config(explicit: str | None) -> Config | None:
    """The register's config if there is one; a preview also works on a bare machine."""
    from bridge import config  # lazy: see run

    path = config.resolve_path(explicit)
    if explicit is None and config.ENV_VAR not in os.environ and not path.exists():
        return None
    return config.load(path)


def load_description(path: str) -> ReceiptDescription:
    # lazy: see run
    from pydantic import ValidationError

    from bridge.loyalty.protocol import loads
    from bridge.receipts.sample import ReceiptDescription

    try:
        data = loads(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read receipt file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"receipt file {path} is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"receipt file {path}: expected a JSON object at the top level")
    try:
        return ReceiptDescription.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'receipt'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise UsageError(f"receipt file {path}: {problems}") from None


def run(args: argparse.Namespace) -> int:
    # lazy, here and in the helpers ("see run"): receipts pull in pydantic, python-escpos
    # and Pillow; the CLI imports this module for its parser, other commands skip them
    from bridge.receipts.loyalty_block import LoyaltyBlockError
    from bridge.receipts.png import PreviewError, write_png
    from bridge.receipts.render import (
        ReceiptRenderError,
        escpos_bytes,
        receipt_printer,
        render_target,
        unprintable,
    )
    from bridge.receipts.sample import from_description, sample_receipt
    from drivers.printer.document import DocumentError, render_text

    cfg = _config(getattr(args, "config", None))
    language = args.language or (cfg.receipt.language if cfg else "ru")
    columns = args.columns or (cfg.receipt.columns if cfg else 42)
    device = receipt_printer(cfg) if cfg else None
    try:
        target = render_target(columns, device)
        if args.from_json:
            description = load_description(args.from_json)
            try:
                receipt = from_description(description, language)
            except LoyaltyBlockError as exc:
                raise UsageError(f"receipt file {args.from_json}: loyalty: {exc}") from None
            except DocumentError as exc:
                raise UsageError(f"receipt file {args.from_json}: {exc}") from None
        else:
            receipt = sample_receipt(args.scenario or "normal", language)
        lines = render_text(receipt, columns)
        data = escpos_bytes(receipt, target)
    except (ReceiptRenderError, LoyaltyBlockError) as exc:
        raise UsageError(str(exc)) from None

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "receipt.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (out / "receipt.bin").write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write the preview to {out}: {exc.strerror or exc}") from None
    print(f"{out / 'receipt.txt'}: {len(lines)} lines, {columns} columns, {language}")
    print(
        f"{out / 'receipt.bin'}: {len(data)} bytes of ESC/POS, {target.code_page} "
        f"in ESC t slot {target.code_page_slot}, profile {target.profile.name}"
    )
    missing = unprintable(lines, target.codec)
    if missing:
        print(
            f"warning: {target.code_page} has no {' '.join(missing)}; "
            "the printer prints '?' instead",
            file=sys.stderr,
        )
    try:
        info = write_png(receipt, columns, out / "receipt.png", font=args.font)
    except PreviewError as exc:
        raise UsageError(f"{exc} (receipt.txt and receipt.bin were written)") from None
    if info.warning:
        print(f"warning: {info.warning}", file=sys.stderr)
    print(f"{info.path}: {info.width}x{info.height} px, font {info.font}")
    return 0
