"""Every subcommand against a battery of bad arguments and files: never a traceback.

The subcommands are enumerated from the argparse parser, so a new one is covered the
day it is added.  Each case runs `posbridge` as a separate process: one driver process
imports the CLI once and forks a child per case (stdout and stderr to files, exit code
from `main`), a few at a time, so the whole battery takes seconds, not minutes.  As
root, the "unreadable" case drops the child to nobody (root reads a 0000 file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.cli import build_parser
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = {0, 1, 2, 3}  # README: ok, refused, usage/config, unreachable
PYDANTIC_WORDS = ("Input should be", "Value error,", "validation error for", "pydantic")
SHARED = {"--config", "--log-level", "--debug", "-h", "--help"}
# what the battery may not vary, and why: it would do real work whatever the value
NOT_VARIED = {
    ("demo", "--out"): "the demo runs in full whatever the folder",
    ("sandbox", "--host"): "the base case binds an unroutable address to stop at once",
    ("scan-test", "--count"): "the base case watches zero events; more waits for a scan",
    ("config", "init", "--dir"): "the base case writes into the scratch folder",
    ("config", "init", "--state-dir"): "the base case writes into the scratch folder",
}
# base arguments that keep a command from doing real, lasting or endless work
BASE: dict[tuple[str, ...], list[str]] = {
    ("sandbox",): ["--host", "192.0.2.1", "--port", "1"],  # TEST-NET: bind fails at once
    ("scan-test",): ["--count", "0"],
    ("demo",): ["--language", "xx"],  # argparse refuses it: the demo never starts
}


@dataclass(frozen=True)
class Case:
    argv: list[str]
    unreadable: bool = False  # run the child as nobody

    def label(self) -> str:
        return " ".join(a if a else "''" for a in self.argv) + (
            " (as nobody)" if self.unreadable else ""
        )


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from leaves(child, (*path, name))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    # not under pytest's 0700 tmp folders: the nobody case must reach its files
    with tempfile.TemporaryDirectory(prefix="posbridge-battery-") as name:
        base = Path(name)
        base.chmod(0o755)
        yield base


@pytest.fixture(scope="module")
def files(scratch: Path) -> dict[str, Path]:
    port = free_port()
    f = {
        "missing": scratch / "missing.toml",
        "empty": scratch / "empty.toml",
        "directory": scratch / "a-directory",
        "binary": scratch / "binary.toml",
        "wrong_types": scratch / "wrong-types.toml",
        "absent": scratch / "absent-devices.toml",
        "unreadable": scratch / "unreadable.toml",
        "fifo": scratch / "a-fifo",
        "cheque": scratch / "cheque.json",
    }
    f["empty"].write_text("")
    f["directory"].mkdir()
    f["binary"].write_bytes(b"\xff\xfe\x00PK\x03\x04" * 20)
    f["wrong_types"].write_text(
        '[processing]\nurl = 5\nlogin = ["a"]\npassword = 1\npassword_file = "/nope"\n'
        'read_timeout = "soon"\n[journal]\nprobe_min_seconds = 9.0\nprobe_max_seconds = 1.0\n'
        '[receipt]\nprinter = "ghost"\n[barcodes]\nloyalty = "2775"\n[[devices]]\nname = 3\n'
    )
    state = scratch / "state"
    absent = (
        f'[processing]\nurl = "http://127.0.0.1:{port}/publicapi"\nlogin = "a"\n'
        f'password = "b"\nlock_file = "{state}/lock"\n[journal]\npath = "{state}/j.sqlite"\n'
        f'[api]\ntoken_file = "{scratch / "missing.token"}"\n'
        '[receipt]\nprinter = "usbp"\n'
        '[[devices]]\nname = "sc"\nkind = "scanner"\nconnection = "serial"\n'
        'port = "/dev/posbridge-absent-scanner"\n'
        '[[devices]]\nname = "usbp"\nkind = "printer"\nconnection = "usb"\nusb = "04b8:0e15"\n'
        f'[[devices]]\nname = "tcpp"\nkind = "printer"\nconnection = "tcp"\nhost = "127.0.0.1"\n'
        f"tcp_port = {port}\n"
        '[[devices]]\nname = "lp"\nkind = "printer"\nconnection = "file"\n'
        'port = "/dev/usb/posbridge-absent-lp0"\n'
    )
    f["absent"].write_text(absent)
    f["absent"].chmod(0o600)
    f["unreadable"].write_text(absent)
    f["unreadable"].chmod(0o000)
    os.mkfifo(f["fifo"])
    f["cheque"].write_text(
        json.dumps(
            {
                "number": "1",
                "date": "2026-11-29T15:00:00",
                "lines": [
                    {
                        "position": 1,
                        "goodsId": "1",
                        "name": "Milk",
                        "price": "1.00",
                        "quantity": "1",
                        "amount": "1.00",
                    }
                ],
            }
        )
    )
    return f


def build(
    path: tuple[str, ...],
    parser: argparse.ArgumentParser,
    files: dict[str, Path],
    vary: argparse.Action | None = None,
    value: str = "",
) -> list[str]:
    """The command's base arguments, with `vary` (a positional or an option) set to value."""
    argv = [*path, *BASE.get(path, [])]
    if path == ("config", "init"):
        argv += [
            "--dir",
            str(files["directory"] / "etc"),
            "--state-dir",
            str(files["directory"] / "state"),
        ]
    for action in parser._actions:
        if action is vary:
            argv += [action.option_strings[0], value] if action.option_strings else [value]
        elif action.option_strings:
            if action.required:
                argv += [action.option_strings[0], str(files["cheque"])]
        elif action.nargs not in ("?", "*"):
            argv.append("2775000000012" if action.dest == "card" else "1")
    return argv


def cases(files: dict[str, Path]) -> list[Case]:
    out: list[Case] = []
    config_free = {("sandbox",), ("demo",), ("config", "init")}
    values = [
        "",
        "abc",
        str(files["missing"]),
        str(files["directory"]),
        str(files["empty"]),
        str(files["binary"]),
        "/proc/posbridge-x.jsonl",
    ]
    for path, parser in leaves(build_parser()):
        if path not in config_free:
            base = build(path, parser, files)
            for key in ("missing", "empty", "directory", "binary", "wrong_types", "absent", "fifo"):
                out.append(Case(["--config", str(files[key]), *base]))
            out.append(
                Case(["--config", str(files["unreadable"]), *base], unreadable=os.geteuid() == 0)
            )
        for action in parser._actions:
            if (
                action.nargs == 0
                or SHARED & set(action.option_strings)
                or isinstance(action, argparse._SubParsersAction)
            ):
                continue
            if (*path, *action.option_strings[:1]) in NOT_VARIED:
                continue
            for value in values:
                out.append(
                    Case(
                        [
                            "--config",
                            str(files["absent"]),
                            *build(path, parser, files, action, value),
                        ]
                    )
                )
    return out


DRIVER = r"""
import io, json, os, sys, traceback
from bridge.cli import build_parser, main
import bridge.config, bridge.doctor, bridge.loyalty.client, bridge.service.devices
build_parser()  # imports every command module once, before the forks
import importlib, pkgutil, bridge, drivers
for pkg in (bridge, drivers):  # and everything they import lazily: a child running as
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):  # nobody may not
        if info.name.endswith("__main__"):  # be able to read the interpreter's library
            continue
        try:
            importlib.import_module(info.name)
        except Exception:
            pass
import sqlite3, termios, serial, httpx, json, decimal, tomllib, email.utils
cases = json.load(sys.stdin)
workdir = sys.argv[1]
results, running, pending = [None] * len(cases), {}, list(range(len(cases)))
TIMEOUT = int(sys.argv[2])
import signal

def start(i):
    out, err = os.path.join(workdir, f"{i}.out"), os.path.join(workdir, f"{i}.err")
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(workdir)
            fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            fd_err = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            os.dup2(fd_out, 1); os.dup2(fd_err, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            sys.stdin = open(os.devnull)
            signal.alarm(TIMEOUT)  # a hung case dies of SIGALRM: reported as a hang
            if cases[i]["unreadable"]:
                os.setgid(65534); os.setuid(65534)
            try:
                rc = main(cases[i]["argv"])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(int(rc))
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(99)
    return pid, out, err

by_pid = {}
while pending or running:
    while pending and len(running) < 4:
        i = pending.pop(0)
        running[i] = start(i)
        by_pid[running[i][0]] = i
    pid, status = os.wait()  # blocks until a child ends (each has its own alarm)
    i = by_pid.pop(pid)
    _, out, err = running.pop(i)
    code = os.waitstatus_to_exitcode(status)
    results[i] = {"rc": "hang" if code == -signal.SIGALRM else code,
                  "out": open(out, errors="replace").read(),
                  "err": open(err, errors="replace").read()}
print(json.dumps(results))
"""


def test_no_subcommand_ends_in_a_traceback(files: dict[str, Path], scratch: Path) -> None:
    battery = cases(files)
    workdir = scratch / "work"
    workdir.mkdir()
    workdir.chmod(0o777)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POSBRIDGE_CONFIG": str(files["missing"])}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(workdir), "20"],
        input=json.dumps([{"argv": c.argv, "unreadable": c.unreadable} for c in battery]),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    bad = []
    for case, r in zip(battery, results, strict=True):
        text = r["out"] + r["err"]
        why = []
        if r["rc"] not in DOCUMENTED:
            why.append(f"exit {r['rc']}")
        if "Traceback" in text:
            why.append("traceback")
        if any(w in r["err"] for w in PYDANTIC_WORDS):
            why.append("pydantic wording")
        if r["rc"] != 0 and not text.strip():
            why.append("failed silently")
        if why:
            bad.append(f"{case.label()}: {', '.join(why)}\n    {r['err'].strip()[-600:]}")
    assert not bad, f"{len(bad)} of {len(battery)} cases:\n" + "\n".join(bad)
    # the bad files were bad in the way meant (a battery of no-ops would pass the above)
    said = {
        (c.argv[1], c.unreadable): r
        for c, r in zip(battery, results, strict=True)
        if c.argv[2:4] == ["config", "check"]
    }
    for key, words in [
        ("missing", "file not found"),
        ("empty", "processing: missing"),
        ("directory", "is a directory"),
        ("fifo", "not a regular file"),
        ("binary", "not UTF-8"),
        ("wrong_types", "probe_max_seconds"),
    ]:
        result = said[(str(files[key]), False)]
        assert result["rc"] == 2 and words in result["err"], (key, result)
    unreadable = said[(str(files["unreadable"]), os.geteuid() == 0)]
    assert unreadable["rc"] == 2 and "Permission denied" in unreadable["err"], unreadable
    # the battery really covers every subcommand, and each with a bad file
    covered = {tuple(c.argv[2:4]) for c in battery}
    for path, _ in leaves(build_parser()):
        assert any(tuple(a[: len(path)]) == path for a in covered), path
    assert len(battery) > 200
