"""`posbridge sandbox registrar` / `python -m sandbox.registrar`: the emulator in the foreground.

For rehearsals and the demo without a real registrar: point a `kind = "registrar"` device
at the printed pty (or its --pty-link) or TCP port, and read what it printed through the
admin calls.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from sandbox.registrar.admin import AdminServer
from sandbox.registrar.emulator import DEFAULT_TCP_PORT, RegistrarEmulator

DEFAULT_ADMIN_PORT = 7779


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posbridge sandbox registrar",
        description=(
            "Run an emulated Shtrih-M fiscal registrar (protocol v1) on a pty and/or TCP, "
            "with a paper log and fault injection behind loopback admin calls."
        ),
        epilog=(
            "With neither --pty, --pty-link nor --tcp it serves a pty and TCP "
            f"{DEFAULT_TCP_PORT}. Admin calls (loopback): GET /registrar/paper, "
            "/registrar/documents, /registrar/state; POST /registrar/faults, "
            "/registrar/faults/clear, /registrar/settings, /registrar/reset. "
            "Stop with Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    parser.add_argument(
        "--pty-link",
        type=Path,
        metavar="PATH",
        help="serve on a new pty and make PATH a symlink to it (a stable port name)",
    )
    parser.add_argument(
        "--tcp",
        type=_port,
        metavar="PORT",
        help=f"serve on TCP PORT (a real device: {DEFAULT_TCP_PORT}; 0 picks one)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (default %(default)s)")
    parser.add_argument(
        "--admin-port",
        type=_port,
        default=DEFAULT_ADMIN_PORT,
        help="loopback port of the admin calls, 0 picks one (default %(default)s)",
    )
    parser.add_argument(
        "--line-width",
        type=_number(16, 80),
        default=48,
        help="characters per line in font 1 (default %(default)s)",
    )
    parser.add_argument(
        "--password", type=_number(1, 99_999_999), default=30, help="operator password"
    )
    parser.add_argument(
        "--admin-password",
        type=_number(1, 99_999_999),
        default=30,
        help="system administrator password",
    )
    parser.add_argument(
        "--stray-ff",
        action="store_true",
        help="over TCP send 0xFF after the host's ACK, as some devices do",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every fault applied")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    emulator = RegistrarEmulator(
        password=args.password,
        admin_password=args.admin_password,
        line_width=args.line_width,
        stray_ff=args.stray_ff,
    )
    serve_pty = args.pty or args.pty_link is not None
    tcp_port = args.tcp
    if not serve_pty and tcp_port is None:
        serve_pty, tcp_port = True, DEFAULT_TCP_PORT
    lines = []
    try:
        if serve_pty:
            path = emulator.start_pty(args.pty_link)
            link = f" (link {args.pty_link})" if args.pty_link else ""
            lines.append(f"  serial: {path}{link}")
        if tcp_port is not None:
            try:
                port = emulator.start_tcp(args.host, tcp_port)
            except OSError as exc:
                print(f"{_prog()}: cannot listen on {args.host}:{tcp_port}: {exc}", file=sys.stderr)
                emulator.stop()
                return 1
            lines.append(f"  tcp:    {args.host}:{port}")
        try:
            admin = AdminServer(emulator, args.admin_port)
        except OSError as exc:
            print(
                f"{_prog()}: cannot listen on 127.0.0.1:{args.admin_port} for the admin calls:"
                f" {exc} (choose another --admin-port)",
                file=sys.stderr,
            )
            emulator.stop()
            return 1
    except OSError as exc:
        print(f"{_prog()}: cannot create the pty or its link: {exc}", file=sys.stderr)
        emulator.stop()
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(
            "\n".join(
                [
                    "posbridge registrar emulator (Shtrih-M protocol v1) serving",
                    *lines,
                    f"  admin:  {admin.url}  (paper, documents, state, faults, reset)",
                    "Ctrl-C to stop.",
                ]
            ),
            flush=True,
        )
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        admin.stop()
        emulator.stop()
    print(f"{_prog()}: stopped", flush=True)
    return 0


def _prog() -> str:
    return "posbridge sandbox registrar"


if __name__ == "__main__":
    raise SystemExit(main())
