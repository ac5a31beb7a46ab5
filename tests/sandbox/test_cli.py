"""`posbridge sandbox` as an operator runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_runs_prints_url_and_cards_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "--port", "0", "--db", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        output = b""
        while b"Ctrl-C" not in output:
            assert sel.select(timeout=20), f"no banner, got {output!r}"
            chunk = os.read(fd, 65536)
            assert chunk, f"the sandbox exited early: {output!r}"
            output += chunk
        sel.close()
        banner = output.decode()
        url = re.search(r"(http://127\.0\.0\.1:\d+/publicapi)", banner)
        assert url
        assert "2775000000012" in banner
        assert "register-1" in banner
        response = httpx.post(
            url.group(1) + "/v1.2/Processing/Balance",
            content=b'{"operationId":"1","operationDate":"2026-11-29T14:00:00",'
            b'"identifier":{"value":"2775000000029"}}',
            auth=("register-2", "secret-2"),
        )
        assert response.json()["code"] == "Ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "posbridge sandbox" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["--latency", "-5"])
    assert bad.value.code == 2
    assert "latency" in capsys.readouterr().err


def test_bad_seed_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--db", str(tmp_path / "x.db"), "--seed", str(tmp_path / "missing.toml")])
    assert code == 2
    assert "missing.toml" in capsys.readouterr().err


def test_port_in_use_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--db", str(tmp_path / "x.db"), "--port", str(port)]) == 1
    assert "cannot listen" in capsys.readouterr().err
