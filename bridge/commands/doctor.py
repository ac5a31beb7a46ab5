"""Check this register end to end: config, devices, processing, clock, journal, disk.

Each line is pass, warn or fail with a fix.  Exit code 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array of checks")
    parser.add_argument(
        "--group", default="posbridge", help="the group the service runs as (default posbridge)"
    )


def run(args: argparse.Namespace) -> int:
    # lazy: the checks reach config, devices, client and journal (pydantic, httpx, pyserial,
    # SQLite); the CLI imports this module for its parser, other commands skip them
    from bridge.doctor import run_checks

    checks = run_checks(args.config, service_group=args.group)
    if args.json:
        print(json.dumps([c.to_json() for c in checks], ensure_ascii=False, indent=1))
    else:
        marks = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"[{marks[c.verdict]}] {c.name:<{width}}  {c.detail}")
            if c.fix and c.verdict not in ("pass", "skip"):
                print(f"       {'':<{width}}  fix: {c.fix}")
    return 1 if any(c.verdict == "fail" for c in checks) else 0
