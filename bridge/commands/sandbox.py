"""Run the processing sandbox: a real server speaking the v1.2 contract over SQLite (loopback)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="listen port (default 8900)")
    parser.add_argument("--db", metavar="FILE", help="SQLite file (default ./posbridge-sandbox.db)")
    parser.add_argument("--seed", metavar="FILE", help="seed TOML for a new database")
    parser.add_argument("--latency", metavar="MS", type=float, help="artificial processing time")


def run(args: argparse.Namespace) -> int:
    from sandbox.cli import main

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.db:
        argv += ["--db", args.db]
    if args.seed:
        argv += ["--seed", args.seed]
    if args.latency is not None:
        argv += ["--latency", str(args.latency)]
    return main(argv)
