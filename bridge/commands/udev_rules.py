"""Write udev rules for the configured devices: group posbridge, mode 0660, /dev/posbridge/NAME.

Install with:  posbridge udev-rules -o /etc/udev/rules.d/99-posbridge.rules
then:          udevadm control --reload && udevadm trigger
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")


def run(args: argparse.Namespace) -> int:
    import os

    from bridge.commands import UsageError
    from bridge.commands.devices import load_specs
    from drivers.udev_rules import RuleError, generate_rules

    specs = load_specs(args.config)
    if not specs:
        raise UsageError("no USB, serial or input devices in the config to write rules for")
    try:
        text = generate_rules(specs)
    except RuleError as exc:
        raise UsageError(str(exc)) from None
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"{len(specs)} device(s): rules written to {args.output}")
    else:
        print(text, end="")
    return 0
