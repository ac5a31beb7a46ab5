"""List serial ports, USB devices and input devices, and which config entry matches each.

Run it before naming devices in the config, and after, to check every entry is found.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import Config
    from drivers.discovery import DeviceSpec


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def specs_from_config(cfg: Config) -> list[DeviceSpec]:
    """The configured devices that discovery can find (TCP and file devices it cannot)."""
    from bridge.devices.build import discovery_spec

    return [spec for d in cfg.devices if (spec := discovery_spec(d)) is not None]


def load_specs(config_path: str | None) -> list[DeviceSpec]:
    from bridge import config

    cfg = config.load_optional(config_path)
    return specs_from_config(cfg) if cfg is not None else []


def run(args: argparse.Namespace) -> int:
    from bridge.commands._output import print_json
    from drivers.discovery import discover, render_table

    inventory = discover(load_specs(args.config))
    if args.json:
        print_json(inventory.to_json())
    else:
        print(render_table(inventory))
    return 0
