"""Write udev rules for the configured devices: group posbridge, mode 0660, /dev/posbridge/NAME.

The rules are written from what identifies each device (`usb` VID:PID[:serial], `by_id`,
or a by-id/by-path/kernel `port`), so a config that already uses the stable names
/dev/posbridge/NAME, as the example does, still gets its rules.

Install with:  sudo posbridge udev-rules -o /etc/udev/rules.d/99-posbridge.rules
then:          sudo udevadm control --reload && sudo udevadm trigger
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from bridge.commands import UsageError

if TYPE_CHECKING:
    from bridge.config import Config
    from drivers.discovery import DeviceSpec


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")


def rule_specs(cfg: Config) -> list[DeviceSpec]:
    """The devices to write rules for, each named by its identity rather than its link.

    A device whose `port` is /dev/posbridge/NAME is matched by its `by_id` when given,
    else by `usb` (drivers.udev_rules refuses a stable name with neither).
    """
    # lazy: see run
    from bridge.commands.devices import specs_from_config
    from bridge.devices.build import by_id as own_path
    from drivers.udev_rules import is_stable_name

    by_id = {d.name: path for d in cfg.devices if (path := own_path(d))}
    specs = []
    for spec in specs_from_config(cfg):
        own = by_id.get(spec.name)
        if own is not None and is_stable_name(spec.port):
            spec = replace(spec, port=own)
        elif own is not None and is_stable_name(spec.input_path):
            spec = replace(spec, input_path=own)
        specs.append(spec)
    return specs


def run(args: argparse.Namespace) -> int:
    # lazy, here and in rule_specs: the config and discovery pull in pydantic, pyserial and
    # pyusb; the CLI imports this module for its parser, and other commands skip them
    from bridge import config
    from drivers.udev_rules import RuleError, generate_rules

    cfg = config.load_optional(args.config)
    specs = rule_specs(cfg) if cfg is not None else []
    if not specs:
        raise UsageError("no USB, serial or input devices in the config to write rules for")
    try:
        text = generate_rules(specs)
    except RuleError as exc:
        raise UsageError(str(exc)) from None
    if args.output:
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise UsageError(
                f"cannot write {args.output}: {exc.strerror} (run it with sudo to write under /etc)"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"{len(specs)} device(s): rules written to {args.output}")
    else:
        print(text, end="")
    return 0
