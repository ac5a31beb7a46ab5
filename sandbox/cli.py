"""`posbridge sandbox`: run the sandbox processing server in the foreground.

For rehearsals and demos without a real processing account: the bridge is pointed at the
printed URL with one of the printed register logins.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
from types import FrameType

from sandbox.rules import SeedError
from sandbox.server import SandboxServer

DEFAULT_DB = "posbridge-sandbox.db"
DEFAULT_PORT = 8900


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not 0 <= value <= 600_000:
        raise argparse.ArgumentTypeError(f"{text} ms is outside 0..600000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posbridge sandbox",
        description=(
            "Run a local loyalty processing server (contract v1.2) on a SQLite file, seeded "
            "with test registers, cards, goods and offers. Point the bridge's processing URL "
            "at the printed address."
        ),
        epilog=(
            "Admin views (loopback only): GET /sandbox/status, /sandbox/ledger/CARD, "
            "/sandbox/purchases/ID; POST /sandbox/reset-counters. "
            "A new --db file is seeded from --seed (default: the bundled seed.toml); "
            "an existing one keeps its data. Stop with Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="TCP port, 0 picks a free one (default %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="FILE",
        help="SQLite database file (default ./%(default)s)",
    )
    parser.add_argument(
        "--seed", metavar="FILE", help="TOML seed for a new database (default: bundled)"
    )
    parser.add_argument(
        "--latency",
        type=_milliseconds,
        default=0.0,
        metavar="MS",
        help="artificial processing time per request in milliseconds (default 0)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = SandboxServer(args.db, args.seed, args.host, args.port, args.latency / 1000)
    except SeedError as exc:
        print(f"posbridge sandbox: {exc}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError) as exc:
        print(f"posbridge sandbox: cannot use database {args.db}: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(
            f"posbridge sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1

    def on_term(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        _announce(server, args.seed)
        server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("posbridge sandbox: stopped", flush=True)
    return 0


def _announce(server: SandboxServer, seed: str | None) -> None:
    info = server.inventory()
    lines = [
        f"posbridge sandbox processing at {server.url}  (db {server.db_path})",
        f"registers (passwords in {seed or 'the bundled sandbox/seed.toml'}):",
        *(f"  {r['login']:<20} {r['status']}" for r in info["registers"]),
        "cards (test numbers):",
        *(
            f"  {c['number']}  {c['state']:<9} balance {c['balance']:>9}"
            + (f"  phone {', '.join(c['phones'])}" if c["phones"] else "")
            for c in info["cards"]
        ),
        f"goods in catalogue: {info['goods']}",
        "Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
