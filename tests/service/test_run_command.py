"""`posbridge run` as systemd runs it: a process that starts, serves and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port
from tests.service.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]


def test_run_serves_then_stops_cleanly_on_sigterm(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    port = free_port()
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "lock"}"\n[journal]\npath = "{tmp_path / "j.sqlite"}"\n'
        f'[api]\nport = {port}\ntoken_file = "{token_file}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "--log-level", "INFO", "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # the service says when it is up: no polling, no sleeping
            if "Uvicorn running" in line or "Application startup" in line or "running on" in line:
                break
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/cheques",
            json={"card": "2775000000012"},
            headers={"X-Posbridge-Token": TOKEN},
            timeout=10,
        )
        assert r.status_code == 201
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "register stopped" in rest
    assert "event=cheque_opened" in rest and "card=27*******0012" in rest
    assert "2775000000012" not in rest and TOKEN not in rest and PASSWORD not in rest
