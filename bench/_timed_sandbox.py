"""The sandbox with a busy-time meter, for bench/concurrency.py (run as a script).

Processing is busy with a contract request from the moment its request line has been
read (headers and body are processing's own work) until its answer is written: the
time the one-request-in-flight rule spends.  The meter adds `busyMicroseconds` (an
integer: the sandbox writes no floats) to the admin view `GET /sandbox/status`;
nothing else changes.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import cli, server, stats

_lock = threading.Lock()
_busy = [0]  # nanoseconds
_parse_request = server._Handler.parse_request
_contract = server._Handler._contract
_snapshot = stats.Stats.snapshot


def _started(self: Any) -> bool:
    self.bench_started = time.perf_counter_ns()  # the request line is in: the work starts
    return bool(_parse_request(self))


def _timed_contract(self: Any, operation: str, run: Any) -> None:
    try:
        _contract(self, operation, run)
    finally:
        spent = time.perf_counter_ns() - self.bench_started
        with _lock:
            _busy[0] += spent


def _timed_snapshot(self: Any) -> dict[str, Any]:
    found = _snapshot(self)
    with _lock:
        found["busyMicroseconds"] = _busy[0] // 1000
    return found


server._Handler.parse_request = _started  # type: ignore[method-assign]
server._Handler._contract = _timed_contract  # type: ignore[method-assign]
stats.Stats.snapshot = _timed_snapshot  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(cli.main())
