"""Run the register service: devices, loyalty client with its offline journal, local POS API.

Stops cleanly on SIGTERM or Ctrl-C: the API stops accepting requests, devices are
released and the journal is closed with every accepted request on disk.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bridge.commands import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-file", metavar="FILE", help="rotating log file (default: stderr)")


def run(args: argparse.Namespace) -> int:
    # lazy: the service is the whole application (FastAPI, uvicorn, httpx, the drivers); the
    # CLI imports this module for its parser, and the other commands' cold start skips it
    from bridge import config, config_access, logs
    from bridge.server import Service

    # the same checks as `config check` (the unit's ExecStartPre): what it accepts starts
    cfg = config.load(args.config, service=True)
    refusal = config_access.refusal(config.resolve_path(args.config), cfg)
    if refusal:
        raise UsageError(refusal)
    try:
        token = cfg.api.secret_token()
    except ValueError as exc:  # changed since the check above
        raise UsageError(f"api.token_file: {exc}") from None
    if not token:
        raise UsageError("the POS API needs a token: set api.token_file (or api.token)")
    try:
        logs.setup(args.log_level, Path(args.log_file) if args.log_file else None)
    except logs.LogFileError as exc:
        raise UsageError(str(exc)) from None
    Service(cfg, token).run()
    return 0
