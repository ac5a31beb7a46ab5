"""Run the sandbox in its own process for benchmarks, so it does not share our GIL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, what: str, timeout: float = 30.0
) -> None:
    """Until the child accepts connections on `port` (both servers listen only once ready)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)  # polling a port that is not open yet: no event to wait on


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(processing's CPUs, the register's CPUs): the last CPU we may use for the sandbox,
    the rest for the register side, as when processing is another machine; None on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def pin(cpus: set[int] | None) -> Callable[[], None] | None:
    """A child's pre-exec hook keeping it (and every thread it starts) on `cpus`.
    Benchmarks start their processes before any thread of their own."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def sandbox_process(
    latency_ms: float = 0.0, cpus: set[int] | None = None, *, timed: bool = False
) -> Iterator[str]:
    """Yields processing's base URL.  `timed`: the sandbox also meters its busy time
    (`busyMicroseconds` in `GET /sandbox/status`, see bench/_timed_sandbox.py)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="posbridge-bench-") as tmp:
        main = [str(ROOT / "bench" / "_timed_sandbox.py")] if timed else ["-m", "sandbox.cli"]
        cmd = [sys.executable, *main, "--port", str(port), "--db", f"{tmp}/p.db"]
        if latency_ms:
            cmd += ["--latency", str(latency_ms)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin(cpus)
        )
        try:
            wait_listening(proc, port, "sandbox")
            yield f"http://127.0.0.1:{port}/publicapi"
        finally:
            proc.terminate()
            proc.wait(10)
