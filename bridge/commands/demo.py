"""Play a checked shift on virtual devices: the main job of posbridge on the embedded default.

Starts the processing sandbox, a virtual scanner, card reader and printer on
pseudo-terminals and the service; then sells one purchase online (swipe, scans,
redemption, receipt) and one offline (queued, offline notice), brings processing
back and checks the journal drains.  Receipts land in --out as text, PNG and ESC/POS.
Exit code 0 only if every step did what it should.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="receipts folder")
    parser.add_argument(
        "--language", choices=["ru", "en"], default="ru", help="receipt language (default ru)"
    )
    parser.add_argument(
        "--passthrough",
        action="store_true",
        help="play an unmodified POS instead: it speaks Shtrih-M to a virtual registrar and"
        " reads a virtual scanner; the loyalty lines land inside its fiscal receipts",
    )


def run(args: argparse.Namespace) -> int:
    # lazy: the demo pulls in the service, the sandbox and httpx (cold start of the CLI)
    from bridge.rehearsal.demo import run as play

    if args.log_level == "WARNING":  # the narration says what happens; keep the log for errors
        logging.getLogger("posbridge").setLevel(logging.ERROR)

    if args.passthrough:
        # lazy: as above, plus the registrar emulator
        from bridge.rehearsal.passthrough_demo import run as play_passthrough

        return play_passthrough(Path(args.out), args.language)
    return play(Path(args.out), args.language)
