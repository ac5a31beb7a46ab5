"""Check the configuration file, or print the effective configuration with secrets redacted.

`check` also looks at who else may read or change the file: a warning when others can read
inline secrets, an error (exit 2) when others can write it, as `run` refuses to start then.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a config file; one line per problem")
    check.add_argument("file", nargs="?", metavar="FILE", help="file to check (default: --config)")
    sub.add_parser("show", help="print the effective config (defaults filled in, secrets ***)")


def run(args: argparse.Namespace) -> int:
    import sys

    from bridge import config, config_access

    path = getattr(args, "file", None) or args.config
    cfg = config.load(path)
    if args.action == "check":
        source = config.resolve_path(path)
        findings = config_access.check(source, cfg)
        failed = [f"{f.text}; run: {f.fix}" for f in findings if f.level == "fail"]
        if failed:
            raise config.ConfigError(str(source), failed)
        for f in findings:
            print(f"warning: {f.text}; {f.fix}", file=sys.stderr)
        print(f"{source}: OK ({len(cfg.devices)} device(s))")
    else:
        print(config.to_toml(config.redacted(cfg)), end="")
    return 0
