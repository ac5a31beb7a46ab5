"""Classify a barcode or a magnetic-stripe swipe as posbridge would, as one JSON object.

RAW may contain escapes such as \\x1d (GS), \\r, \\t.  Card numbers are masked unless
--unmasked: a loyalty card by the card rule, and any Luhn-valid run of 13-19 digits in
an unknown scan, as the service masks them.  A swipe typed under a Russian keyboard
layout (`ж...=...,`) is repaired as the service repairs it.  An unknown code says why in
`reason`.  Exit code 0 whatever the kind; 2 when the input is unusable.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bridge.commands import UsageError
from drivers.masking import mask_data
from drivers.scanner.layout_repair import repair_layout

if TYPE_CHECKING:
    from bridge.barcodes import BarcodeSettings


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    bc = sub.add_parser("barcode", help="classify a scanned barcode")
    bc.add_argument("raw", metavar="RAW", help=r"scan text, e.g. ']d201046...\x1d93abcd'")
    bc.add_argument("--unmasked", action="store_true", help="show loyalty card numbers in full")
    tr = sub.add_parser("track", help="parse magnetic stripe tracks")
    tr.add_argument("raw", metavar="RAW", help="swipe text, e.g. %%B4111...^N^2512?;4111...=2512?")
    tr.add_argument("--unmasked", action="store_true", help="show the card number in full")


def run(args: argparse.Namespace) -> int:
    # lazy: barcodes and the protocol pull in biip and pydantic, swipes python-stdnum; the
    # CLI imports this module for its parser, and other commands' cold start skips them
    from bridge.barcodes import UnusableInput, classify, decode_escapes
    from bridge.commands._output import print_json
    from bridge.loyalty.protocol import mask_card
    from drivers.msr.tracks import SwipeError, mask, parse_swipe

    raw = decode_escapes(args.raw)
    if args.what == "barcode":
        settings = _settings(args.config)
        try:
            result = classify(raw, settings).to_json()
        except UnusableInput as exc:
            raise UsageError(f"unusable barcode: {exc}") from None
        if result["kind"] == "loyalty_card" and not args.unmasked:
            result["card"] = result["text"] = mask_card(result["text"])
        elif result["kind"] == "unknown" and not args.unmasked:
            result = mask_data(result)
        print_json(result)
        return 0
    repaired = repair_layout(raw)
    try:
        swipe = parse_swipe(repaired)
    except SwipeError as exc:
        raise UsageError(f"unusable swipe: {exc}") from None
    number = swipe.number if args.unmasked else (mask(swipe.number) if swipe.number else None)
    print_json(
        {
            "number": number,
            "tracks": {str(n): swipe.status(n).value for n in (1, 2, 3)},
            "name": getattr(swipe.tracks.get(1), "name", None),
            "expiry": next((t.expiry for t in swipe.tracks.values() if t.expiry), None),
            "layoutRepaired": repaired != raw,
        }
    )
    return 0


def _settings(config_path: str | None) -> BarcodeSettings:
    """The [barcodes] rules of the config if there is one, else the defaults."""
    # lazy: as in run
    from bridge import config
    from bridge.barcodes import BarcodeSettings

    cfg = config.load_optional(config_path)
    return cfg.barcodes if cfg is not None else BarcodeSettings()
