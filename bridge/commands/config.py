"""Check the configuration file, or print the effective configuration with secrets redacted."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a config file; one line per problem")
    check.add_argument("file", nargs="?", metavar="FILE", help="file to check (default: --config)")
    sub.add_parser("show", help="print the effective config (defaults filled in, secrets ***)")


def run(args: argparse.Namespace) -> int:
    from bridge import config

    path = getattr(args, "file", None) or args.config
    cfg = config.load(path)
    if args.action == "check":
        print(f"{config.resolve_path(path)}: OK ({len(cfg.devices)} device(s))")
    else:
        print(config.to_toml(config.redacted(cfg)), end="")
    return 0
