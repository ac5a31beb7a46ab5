"""Check the configuration file, or print the effective configuration with secrets redacted.

`check` also looks at who else may read or change the file: a warning when others can read
inline secrets, an error (exit 2) when others can write it, as `run` refuses to start then.
"""

from __future__ import annotations

import argparse
import sys

from bridge.commands import config_init


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a config file; one line per problem")
    check.add_argument("file", nargs="?", metavar="FILE", help="file to check (default: --config)")
    show = sub.add_parser(
        "show", help="print the effective config (defaults filled in, secrets ***)"
    )
    show.add_argument("file", nargs="?", metavar="FILE", help="file to show (default: --config)")
    config_init.configure(sub)


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        return config_init.run(args)
    # lazy: the config models are pydantic, which the CLI's cold start skips
    from bridge import config, config_access

    path = getattr(args, "file", None) or args.config
    if args.action == "check":  # everything `run` needs, so systemd never starts a crash
        source = config.resolve_path(path)
        try:
            cfg = config.load(path, service=True)
        except config.ConfigError as exc:  # add who may write the file: all in one list
            writable = config_access.writable_by_others(source)
            if writable is not None and source.is_file():
                exc.problems.append(f"{writable.text}; run: {writable.fix}")
            raise
        findings = config_access.check(source, cfg)
        failed = [f"{f.text}; run: {f.fix}" for f in findings if f.level == "fail"]
        if failed:
            raise config.ConfigError(str(source), failed)
        for f in findings:
            print(f"warning: {f.text}; {f.fix}", file=sys.stderr)
        print(f"{source}: OK ({len(cfg.devices)} device(s))")
    else:
        cfg = config.load(path)
        print(config.to_toml(config.redacted(cfg)), end="")
    return 0
