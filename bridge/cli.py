"""The `posbridge` command.

Subcommands live in `bridge.commands.*`; this module builds the parser from their
`configure` functions and maps the error families to exit codes: 0 ok, 1 business
refusal, 2 usage or config error, 3 processing (or a device) unreachable.  An expected
failure is one line saying what and how to fix it; anything else is a bug: one line
and exit 70, the traceback only with --debug.  Only argparse is imported up front, so
`posbridge --version` stays well under the 0.3 s start budget.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from bridge import __version__
from bridge.commands import (
    EXIT_BUG,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    UsageError,
)
from bridge.loyalty import errors
from drivers.masking import mask_text
from drivers.transport.base import TransportError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bridge.commands.run", "run the register service (devices, loyalty, POS API)"),
    "config": ("bridge.commands.config", "check or show the configuration"),
    "balance": ("bridge.commands.balance", "show a card's bonus balance"),
    "purchase": ("bridge.commands.purchase", "run a loyalty purchase for a cheque file"),
    "journal": (
        "bridge.commands.journal",
        "inspect, replay, check and salvage the offline journal",
    ),
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the other commands are listed by name and help
    but their modules are not imported: the service's process (`run`) keeps out the code
    of sixteen commands it never runs."""
    parser = argparse.ArgumentParser(
        prog="posbridge",
        description="Bridge between POS peripherals, the POS software and loyalty processing.",
    )
    parser.add_argument("--version", action="version", version=f"posbridge {__version__}")
    _common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.configure(cmd)
        cmd.set_defaults(_module=module_name)
        for p in _with_subparsers(cmd):
            _common_options(p, top=False)
    return parser


def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--config, --log-level and --debug, accepted before or after the subcommand.

    Below the top level the default is SUPPRESS, so an option given before the
    subcommand is not reset by the subparser's own default.
    """

    def default(value: object) -> dict[str, Any]:
        return {"default": value if top else argparse.SUPPRESS}

    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $POSBRIDGE_CONFIG or /etc/posbridge/posbridge.toml)",
        **default(None),
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity on stderr (default WARNING)",
        **default("WARNING"),
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an unexpected error",
        **default(False),
    )


def _with_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every nested subcommand parser below it (`config check`, ...)."""
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out.extend(_with_subparsers(child))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list in (["--version"], ["-V"]):  # the fast path: no parser, no imports
        print(f"posbridge {__version__}")
        return EXIT_OK
    parser = build_parser(_command_named(args_list))
    args = parser.parse_args(args_list)
    if not getattr(args, "_module", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # map known families to exit codes; anything else is a bug
        if args.debug:
            traceback.print_exc()
        code = _exit_code(exc)
        if code is None:
            where = getattr(args, "log_file", None)
            if where:  # the service's log keeps what the terminal of a unit never shows
                logging.getLogger("posbridge").error("unexpected error", exc_info=exc)
            print(
                f"posbridge {args.command}: unexpected error ({type(exc).__name__}:"
                f" {_one_line(str(exc))}); this is a bug: "
                + (f"see {where}, or " if where else "")
                + "run again with --debug for the traceback, and report it",
                file=sys.stderr,
            )
            return EXIT_BUG
        print(f"posbridge {args.command}: {_message(exc)}", file=sys.stderr)
        return code


def _command_named(args: Sequence[str]) -> str | None:
    """The subcommand on the command line, found as argparse will find it: the first word
    that is not an option or the value of --config / --log-level."""
    takes_value = {"--config", "--log-level"}
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _one_line(text: str, limit: int = 200) -> str:
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return mask_text(text if len(text) <= limit else text[: limit - 3] + "...")


def _exit_code(exc: Exception) -> int | None:
    # lazy, here and in _message: these families live in modules that pull in pydantic,
    # httpx and sqlite3; only a failing command pays for them, not every cold start
    from bridge.config import ConfigError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, errors.AuthenticationFailed) or _wrong_path(exc):
        return EXIT_USAGE
    if isinstance(exc, errors.BusinessError):
        return EXIT_REFUSED
    if isinstance(exc, errors.LoyaltyError):
        return EXIT_UNREACHABLE
    # lazy: as above (sqlite3, httpx)
    from bridge.loyalty.journal import JournalError
    from bridge.loyalty.sequencer import LockFileError
    from bridge.service.cheque_store import ChequeStoreError

    if isinstance(exc, UsageError | JournalError | LockFileError | ChequeStoreError):
        return EXIT_USAGE
    # lazy: as above (pydantic; drivers.device costs --version 10 ms of dataclasses)
    from pydantic import ValidationError

    from drivers.device import DeviceError

    if isinstance(exc, ValidationError):
        return EXIT_USAGE
    if isinstance(exc, TransportError | DeviceError):
        return EXIT_UNREACHABLE
    if isinstance(exc, OSError):  # a file or device named on the command line or in the config
        return EXIT_USAGE
    return None


def _wrong_path(exc: Exception) -> bool:
    """404/405 from processing: the host answers, the path is wrong (processing.url)."""
    return isinstance(exc, errors.ProcessingHTTPError) and exc.status in (404, 405)


def _message(exc: Exception) -> str:
    from bridge.config import ConfigError  # lazy: see _exit_code

    if isinstance(exc, ConfigError):
        return exc.render()
    if isinstance(exc, errors.BusinessError):
        return f"{exc.code}: {exc.cashier_text}"
    if _wrong_path(exc):
        return (
            f"processing answered HTTP {getattr(exc, 'status', '?')} (no such path): check"
            " processing.url, the API's base URL such as https://processing.example/publicapi"
            f" ({_one_line(str(exc))})"
        )
    from pydantic import ValidationError  # lazy: see _exit_code

    if isinstance(exc, ValidationError):
        from bridge.config import describe_error  # lazy: see _exit_code

        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {describe_error(e)}"
            for e in exc.errors()
        )
    from drivers.device import DeviceError  # lazy: see _exit_code

    if isinstance(exc, TransportError | DeviceError):
        return (
            f"device unreachable: {_one_line(str(exc))}; check cable, power and the"
            " [[devices]] address (`posbridge devices` lists what is connected)"
        )
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return (
            f"cannot use{where}: {exc.strerror or _one_line(str(exc))}; check the path"
            " and its permissions"
        )
    return str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
