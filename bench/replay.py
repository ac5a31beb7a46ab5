"""Offline journal: replay speed against a bare httpx loop, and durable appends per second.

Replay: N journal entries (discount + confirm of N/2 purchases) drained by `OfflineClient`
against the sandbox, vs a bare sequential httpx loop posting equivalent bodies (same
cheques, their own purchase and operation ids, so processing does the same work) and
parsing each answer.  A third side sends equivalent steps with `LoyaltyClient.send` and
no journal, to tell the journal's share from the client's.  The sides take turns chunk
by chunk so machine noise hits all alike; printed: the median over chunks of (replay
time / bare time).  Target <= 1.25.

Appends: the same N entries written with `Journal.append` (one fsync'd transaction each)
vs raw sqlite3 inserts of the same rows with `synchronous=FULL` in WAL mode, one commit
each, alternating in chunks.  Target >= 200 appends/s.

The sandbox runs in its own process; the journal lives in a temporary directory on the
same disk as /tmp (fsync must reach a real file system for the figure to mean anything).

    .venv/bin/python bench/replay.py            # 5,000 entries
    .venv/bin/python bench/replay.py -n 400     # a quick run
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import sandbox_process
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal, record_text
from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import (
    REQUEST_MODELS,
    Operation,
    ProcessingResponse,
    loads,
)
from bridge.loyalty.request import PreparedRequest, new_id
from tests.loyalty.offline_helpers import shift

LOGIN, PASSWORD = "register-1", "secret-1"


def entries(n: int, seed: int) -> list[PreparedRequest]:
    """n requests: discount then confirm of n/2 purchases, each with fresh ids."""
    out = []
    for cheque, ident, when, _ in shift(seed, (n + 1) // 2):
        pid = new_id()
        for op, fields in ((Operation.DISCOUNT, {"cheque": cheque}), (Operation.CONFIRM, {})):
            body = REQUEST_MODELS[op](
                operation_id=new_id(), operation_date=when, identifier=ident, **fields
            )
            out.append(PreparedRequest(op, body, pid))
    return out[:n]


def chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def bench_appends(tmp: Path, requests: list[PreparedRequest], size: int) -> tuple[float, float]:
    """Median chunk rates (per second): Journal.append vs raw fsync'd sqlite inserts."""
    journal = Journal(tmp / "appends.sqlite")
    raw = sqlite3.connect(tmp / "raw.sqlite", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT, "
        "operation_id TEXT UNIQUE, request TEXT, created_at REAL)"
    )
    rows = [(r.op.value, r.operation_id, record_text(r)) for r in requests]
    ours, theirs = [], []
    for part in chunks(len(requests), size):
        start = time.perf_counter()
        for i in part:
            journal.append(requests[i])
        ours.append(len(part) / (time.perf_counter() - start))
        start = time.perf_counter()
        for i in part:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(
                "INSERT INTO entries (op, operation_id, request, created_at) VALUES (?, ?, ?, ?)",
                (*rows[i], time.time()),
            )
            raw.execute("COMMIT")
        theirs.append(len(part) / (time.perf_counter() - start))
    journal.close()
    raw.close()
    return statistics.median(ours), statistics.median(theirs)


@dataclass
class Sides:
    """Per-chunk milliseconds per request of each side."""

    replay: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    def ratio(self, a: list[float], b: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(a, b, strict=True))


def bench_replay(url: str, tmp: Path, n: int, size: int) -> Sides:
    """Three sides, each with its own equivalent entries, alternating chunk by chunk:
    the journal replayed by OfflineClient, the same steps sent by LoyaltyClient alone (no
    journal: the client's own share), and a bare httpx loop (bodies encoded beforehand)."""
    journal = Journal(tmp / "replay.sqlite")
    seqs = [journal.append(r).seq for r in entries(n, seed=1)]
    oc = OfflineClient(LoyaltyClient(url, LOGIN, PASSWORD, lock_file=tmp / "lock"), journal)
    direct = LoyaltyClient(url, LOGIN, PASSWORD, lock_file=tmp / "lock")
    direct_reqs = entries(n, seed=1)
    bare = httpx.Client(
        base_url=url,
        auth=(LOGIN, PASSWORD),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    bodies = [(r.path, r.payload()) for r in entries(n, seed=1)]
    warm = oc.client.prepare(Operation.BALANCE)  # open every connection before timing
    bare.post(warm.path, content=warm.payload())
    oc.client.probe()
    direct.probe()

    def replay(part: range) -> float:
        start = time.perf_counter()
        report = oc.drain(until=seqs[part[-1]])
        took = time.perf_counter() - start
        if report.stopped is not None or report.rejected or report.done != len(part):
            raise SystemExit(f"replay went wrong: {report}")
        return took

    def client(part: range) -> float:
        start = time.perf_counter()
        for i in part:
            direct.send(direct_reqs[i])  # raises on anything but Ok
        return time.perf_counter() - start

    def loop(part: range) -> float:
        start = time.perf_counter()
        for i in part:
            path, body = bodies[i]
            answer = ProcessingResponse.model_validate(loads(bare.post(path, content=body).content))
            if not answer.ok:
                raise SystemExit(f"bare request refused: {answer.code} {answer.error_message}")
        return time.perf_counter() - start

    sides = Sides()
    runners = [(replay, sides.replay), (client, sides.client), (loop, sides.bare)]
    for k, part in enumerate(chunks(n, size)):
        for run, times in runners[k % 3 :] + runners[: k % 3]:  # rotate who goes first
            times.append(run(part) / len(part) * 1e3)
    counts = journal.counts()
    assert counts.pending == 0 and counts.done == n, counts
    bare.close()
    direct.close()
    oc.client.close()
    journal.close()
    return sides


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=5000, help="journal entries (default %(default)s)")
    ap.add_argument(
        "--chunk", type=int, default=50, help="entries per alternation (default %(default)s)"
    )
    args = ap.parse_args()
    logging.getLogger("posbridge").setLevel(logging.ERROR)  # "recovering -> online" is expected
    if args.n < 2:
        ap.error("-n must be at least 2")
    with tempfile.TemporaryDirectory(prefix="posbridge-replay-", dir=os.environ.get("TMPDIR")) as d:
        tmp = Path(d)
        ours_rate, raw_rate = bench_appends(tmp, entries(args.n, seed=2), args.chunk)
        with sandbox_process() as url:
            sides = bench_replay(url, tmp, args.n, args.chunk)
    med = statistics.median
    print(f"offline journal, {args.n} entries, chunks of {args.chunk}")
    print(f"  replay (OfflineClient.drain) : median {med(sides.replay):.3f} ms/entry")
    print(f"  LoyaltyClient.send, no journal: median {med(sides.client):.3f} ms/request")
    print(
        f"  bare httpx loop              : median {med(sides.bare):.3f} ms/request "
        "(encode excluded, parse included)"
    )
    print(
        f"  median ratio replay/bare   = {sides.ratio(sides.replay, sides.bare):.3f}"
        "  (target <= 1.25)"
    )
    print(f"    of which client/bare     = {sides.ratio(sides.client, sides.bare):.3f}")
    print(f"    and journal replay/client = {sides.ratio(sides.replay, sides.client):.3f}")
    print(f"  durable appends : {ours_rate:.0f}/s (fsync each; target >= 200/s)")
    print(f"  raw sqlite      : {raw_rate:.0f}/s (WAL, synchronous=FULL, commit each)")
    print(f"  appends / raw   = {ours_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
