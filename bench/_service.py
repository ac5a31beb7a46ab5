"""Run `posbridge run` in its own process against a sandbox URL, for benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._sandbox import ROOT, free_port, pin, wait_listening

TOKEN = "bench-token-0123456789"


@contextmanager
def service_process(
    sandbox_url: str,
    cpus: set[int] | None = None,
    *,
    where: Path | None = None,
    processing: str = "",
    journal: str = "",
) -> Iterator[tuple[str, int]]:
    """Yields (base URL, pid).  `processing` and `journal` are extra TOML lines for those
    sections; `where` keeps the service's files (a tmpfs, say) instead of a temp dir."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="posbridge-svc-") as scratch:
        tmp = where or Path(scratch)
        cfg = tmp / "posbridge.toml"
        cfg.write_text(
            f'[processing]\nurl = "{sandbox_url}"\nlogin = "register-1"\npassword = "secret-1"\n'
            f'lock_file = "{tmp}/lock"\n{processing}'
            f'[journal]\npath = "{tmp}/journal.sqlite"\n{journal}'
            f'[api]\nport = {port}\ntoken = "{TOKEN}"\n'
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(cfg), "--log-level", "ERROR", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pin(cpus),
        )
        try:
            wait_listening(proc, port, "service")
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(20)
