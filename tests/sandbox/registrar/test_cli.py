"""`python -m sandbox.registrar` and `posbridge sandbox registrar` as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.sandbox.registrar.wire import RawHost, cmd

ROOT = Path(__file__).resolve().parents[3]
POSBRIDGE = Path(sys.executable).with_name("posbridge")


def start(argv: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    seen: dict[str, str] = {}
    for line in proc.stdout:  # the banner ends with the Ctrl-C line
        for key in ("serial", "tcp", "admin"):
            if line.strip().startswith(key + ":"):
                seen[key] = line.split(":", 1)[1].strip()
        if line.startswith("Ctrl-C"):
            break
    return proc, seen


def test_module_serves_pty_link_tcp_and_admin_then_stops_on_sigterm(tmp_path: Path) -> None:
    link = tmp_path / "ttyREG"
    proc, seen = start(
        [sys.executable, "-m", "sandbox.registrar", "--pty-link", str(link), "--tcp", "0",
         "--admin-port", "0"]
    )  # fmt: skip
    try:
        assert link.is_symlink() and seen["serial"].startswith(os.readlink(link))
        port = int(seen["tcp"].rsplit(":", 1)[1])
        admin_url = seen["admin"].split()[0]
        tcp = RawHost.connect(port)
        serial = RawHost.open_pty(str(link))
        try:
            assert tcp.call(cmd(0x17, b"\x02" + b"over tcp")).error == 0
            assert serial.call(cmd(0x17, b"\x02" + b"over serial")).error == 0
        finally:
            tcp.close()
            serial.close()
        paper = httpx.get(admin_url + "paper", timeout=5).json()["text"]
        assert paper.splitlines() == ["over tcp", "over serial"]  # one device behind both
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert not link.exists() and not link.is_symlink()  # the link goes with the pty


def test_posbridge_sandbox_registrar_command() -> None:
    proc, seen = start([str(POSBRIDGE), "sandbox", "registrar", "--tcp", "0", "--admin-port", "0"])
    try:
        assert "serial" not in seen  # only what was asked for
        port = int(seen["tcp"].rsplit(":", 1)[1])
        host = RawHost.connect(port)
        try:
            assert host.call(cmd(0x10)).fields[3] == 4
        finally:
            host.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_bad_option_is_one_line_saying_what() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "sandbox.registrar", "--tcp", "70000"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 2
    assert "70000 is not a port number" in run.stderr
    assert "Traceback" not in run.stderr


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "sandbox.registrar", "--tcp", str(port), "--admin-port", "0"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert run.returncode == 1
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{port}", run.stderr)
    assert "Traceback" not in run.stderr
