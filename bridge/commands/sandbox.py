"""Run a stand-in: the processing sandbox, a real server speaking the v1.2 contract over
SQLite (loopback); or, with `registrar`, the Shtrih-M fiscal registrar emulator (pty/TCP)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="listen port (default 8900)")
    parser.add_argument("--db", metavar="FILE", help="SQLite file (default ./posbridge-sandbox.db)")
    parser.add_argument("--seed", metavar="FILE", help="seed TOML for a new database")
    parser.add_argument("--latency", metavar="MS", type=float, help="artificial processing time")
    parser.add_argument(
        "stand_in",
        nargs="?",
        choices=("processing", "registrar"),
        default="processing",
        help="processing (default) or registrar: the Shtrih-M registrar emulator instead",
    )
    _registrar_options(parser.add_argument_group("registrar emulator (with `registrar`)"))


def _registrar_options(group: argparse._ArgumentGroup) -> None:
    # values are checked by the emulator's own command line (sandbox.registrar.cli)
    option = group.add_argument
    option("--pty", dest="r_pty", action="store_true", help="serve on a new pty")
    option("--pty-link", dest="r_pty_link", metavar="PATH", help="a pty, symlinked at PATH")
    option("--tcp", dest="r_tcp", metavar="PORT", help="serve on TCP PORT (0 picks one)")
    option("--admin-port", dest="r_admin_port", metavar="N", help="admin calls port (7779)")
    option("--line-width", dest="r_line_width", metavar="N", help="characters per line (48)")
    option("--password", dest="r_password", metavar="N", help="operator password (30)")
    option("--admin-password", dest="r_admin_password", metavar="N", help="admin password")
    option("--stray-ff", dest="r_stray_ff", action="store_true", help="0xFF after ACK on TCP")
    option("--verbose", dest="r_verbose", action="store_true", help="log every fault applied")


def run(args: argparse.Namespace) -> int:
    # lazy, both: only this command needs a stand-in server (the CLI imports this module for
    # its parser; every other command's cold start skips the stand-ins)
    registrar_argv = _registrar_argv(args)
    if args.stand_in == "registrar":
        processing_only = [
            flag
            for flag, given in (
                ("--port", args.port != 8900),
                ("--db", args.db),
                ("--seed", args.seed),
                ("--latency", args.latency is not None),
            )
            if given
        ]
        if processing_only:
            return _wrong_stand_in(processing_only[0], "the processing sandbox", "")
        from bridge.rehearsal.registrar_server import serve as serve_registrar  # lazy: above

        return serve_registrar(registrar_argv)
    foreign = [flag for flag in registrar_argv if flag.startswith("--") and flag != "--host"]
    if foreign:
        return _wrong_stand_in(foreign[0], "the registrar emulator", " registrar")
    from bridge.rehearsal.processing_server import serve  # lazy: see above

    return serve(args.host, args.port, args.db, args.seed, args.latency)


def _wrong_stand_in(flag: str, owner: str, command: str) -> int:
    print(
        f"posbridge sandbox: {flag} is an option of {owner}: run `posbridge sandbox{command} ...`",
        file=sys.stderr,
    )
    return 2


def _registrar_argv(args: argparse.Namespace) -> list[str]:
    argv = [flag for flag, on in (("--pty", args.r_pty), ("--stray-ff", args.r_stray_ff)) if on]
    if args.host != "127.0.0.1":  # --host is shared: the TCP address of either stand-in
        argv += ["--host", args.host]
    if args.r_verbose:
        argv.append("--verbose")
    for flag, value in (
        ("--pty-link", args.r_pty_link),
        ("--tcp", args.r_tcp),
        ("--admin-port", args.r_admin_port),
        ("--line-width", args.r_line_width),
        ("--password", args.r_password),
        ("--admin-password", args.r_admin_password),
    ):
        if value is not None:
            argv += [flag, value]
    return argv
