"""End of shift: cancel every cheque still open on the running service.

An open cheque may hold bonuses at processing; `close` asks the service (over its local
API, with the configured token) to cancel them all, which gives the held bonuses back
through the journal, so it works while processing is unreachable too.
"""

from __future__ import annotations

import argparse
import sys

from bridge.commands import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    close = sub.add_parser("close", help="cancel every open cheque (held bonuses given back)")
    close.add_argument("--json", action="store_true", help="print one JSON object")
    close.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the service (default 120)",
    )


def run(args: argparse.Namespace) -> int:
    # lazy: httpx and the config's pydantic models; the CLI imports this module for its
    # parser, and the other commands' cold start skips them
    import httpx

    from bridge import config
    from bridge.commands._output import print_json
    from bridge.loyalty.protocol import loads

    cfg = config.load(args.config)
    try:
        token = cfg.api.secret_token()
    except ValueError as exc:  # the token file: missing, unreadable, open to others, empty
        raise UsageError(f"api.token_file: {exc}") from None
    if not token:
        raise UsageError("the POS API needs a token: set api.token_file (or api.token)")
    host = cfg.api.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{cfg.api.port}"
    try:
        response = httpx.post(
            f"{url}/v1/shift/close",
            headers={"X-Posbridge-Token": token},
            timeout=httpx.Timeout(args.timeout, connect=5.0),
        )
    except httpx.HTTPError as exc:
        reason = type(exc).__name__ if not str(exc) else str(exc)
        print(
            f"posbridge shift: the service is not reachable at {url} ({reason}); "
            "is it running? check: systemctl status posbridge",
            file=sys.stderr,
        )
        return 3
    try:
        answer = loads(response.content)
    except ValueError:
        answer = {}
    if response.status_code == 401:
        raise UsageError(
            f"the service at {url} refused the token: api.token_file (or "
            "api.token) must be the running service's token"
        )
    if response.status_code != 200 or not isinstance(answer, dict):
        detail = answer.get("detail") if isinstance(answer, dict) else None
        print(
            f"posbridge shift: the service answered {response.status_code}: "
            f"{detail or 'no details'}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print_json(answer)
    else:
        print(
            f"{answer.get('cancelled', 0)} open cheque(s) cancelled"
            + (
                f", {answer['queued']} queued until processing answers"
                if answer.get("queued")
                else ""
            )
        )
        for number in answer.get("cheques", []):
            print(f"  cheque {number}")
    return 0
