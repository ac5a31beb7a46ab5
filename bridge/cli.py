"""The `posbridge` command.

Subcommands live in `bridge.commands.*`; this module builds the parser from their
`configure` functions and maps the error families to exit codes: 0 ok, 1 business
refusal, 2 usage or config error, 3 processing unreachable.  Only argparse is imported
up front, so `posbridge --version` stays well under the 0.3 s start budget.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bridge import __version__
from bridge.commands import UsageError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.commands.run", "run the register service (devices, loyalty, POS API)"),
    "config": ("bridge.commands.config", "check or show the configuration"),
    "balance": ("bridge.commands.balance", "show a card's bonus balance"),
    "purchase": ("bridge.commands.purchase", "run a loyalty purchase for a cheque file"),
    "journal": ("bridge.commands.journal",
                "inspect, replay, check and salvage the offline journal"),
    "shift": ("bridge.commands.shift", "close the shift: cancel the cheques left open"),
    "catalog": ("bridge.commands.catalog", "push the product nomenclature to processing"),
    "receipt": ("bridge.commands.receipt", "preview receipts as text and PNG"),
    "doctor": ("bridge.commands.doctor", "check config, devices, processing, clock and journal"),
    "devices": ("bridge.commands.devices", "list serial, USB and input devices and config matches"),
    "udev-rules": ("bridge.commands.udev_rules", "write udev rules for the configured devices"),
    "test-print": ("bridge.commands.test_print", "print a test page on a receipt printer"),
    "scan-test": ("bridge.commands.scan_test", "show live scans and swipes, classified"),
    "decode": ("bridge.commands.decode", "classify a barcode or a card swipe (JSON)"),
    "sandbox": ("bridge.commands.sandbox", "run the processing sandbox server"),
    "demo": ("bridge.commands.demo", "run the demo against the bundled sandbox"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posbridge",
        description="Bridge between POS peripherals, the POS software and loyalty processing.",
    )
    parser.add_argument("--version", action="version", version=f"posbridge {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $POSBRIDGE_CONFIG or /etc/posbridge/posbridge.toml)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity on stderr (default WARNING)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.configure(cmd)
        cmd.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):  # the fast path: no parser, no imports
        print(f"posbridge {__version__}")
        return EXIT_OK
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "_module", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # map known families to exit codes; anything else is a bug
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"posbridge {args.command}: {_message(exc)}", file=sys.stderr)
        return code


def _exit_code(exc: Exception) -> int | None:
    from bridge.config import ConfigError
    from bridge.loyalty import errors

    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, errors.AuthenticationFailed):
        return EXIT_USAGE
    if isinstance(exc, errors.BusinessError):
        return EXIT_REFUSED
    if isinstance(exc, errors.LoyaltyError):
        return EXIT_UNREACHABLE
    from bridge.loyalty.journal import JournalError
    from bridge.loyalty.sequencer import LockFileError
    from bridge.service.cheque_store import ChequeStoreError

    if isinstance(exc, UsageError | JournalError | LockFileError | ChequeStoreError):
        return EXIT_USAGE
    return None


def _message(exc: Exception) -> str:
    from bridge.config import ConfigError
    from bridge.loyalty import errors

    if isinstance(exc, ConfigError):
        return exc.render()
    if isinstance(exc, errors.BusinessError):
        return f"{exc.code}: {exc.cashier_text}"
    return str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
