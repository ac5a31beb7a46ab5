"""50 POS clients at once through the POS API, processing taking 5 ms a request: how busy
is processing?

One request in flight per register is the invariant, so processing can be busy at most
100% of the wall time, and only if the next request is ready the moment the previous
answer lands.  Every gap between two requests (the answer travelling back through the
service, the next step being prepared, a thread waiting for the GIL) is processing idle
while tills wait.  Target: busy >= 80% of the wall time.

Processing's busy time is metered inside the sandbox (bench/_timed_sandbox.py: from a
request's request line read to its answer written).  Baseline, same run, same sandbox: one bare
httpx client sending calculate requests back to back, the best a single sequence of
requests can do.  Printed: both busy fractions and their ratio (API / bare), calls per
second, and the sandbox's overlap count, which must be 0 (the invariant held).

The POS clients are one asyncio loop of this process, each on a keep-alive connection (a
minimal HTTP/1.1 exchange, as in api_overhead.py).  `--mix purchase` (the default): each
sells again and again (open a cheque, calculate, confirm: three requests to processing for
a card, the last two journaled first); `--mix calculate`: each calculates its own cheque
again and again.  Placement as in api_overhead.py: the sandbox on a CPU of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import sandbox_process, split_cpus
from bench._service import TOKEN, service_process
from bench.client_overhead import requests

CARDS = ["2775000000012", "2775000000029", None]
LINES = [
    {"goodsId": "1001", "name": "Milk", "price": "89.90", "quantity": "2"},
    {"goodsId": "5001", "name": "Soap", "price": "150.00", "quantity": "1"},
]


def sandbox_status(sandbox_url: str) -> dict[str, float]:
    base = sandbox_url.rsplit("/publicapi", 1)[0]
    answer: dict[str, float] = httpx.get(f"{base}/sandbox/status", timeout=10).json()
    return answer


class Till:
    """One POS client on a keep-alive connection: a minimal HTTP/1.1 exchange."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, path: str, body: bytes = b"") -> bytes:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Posbridge-Token: {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        if status not in (200, 201):
            raise RuntimeError(f"POST {path}: HTTP {status} {answer[:200]!r}")
        return answer


async def pos_client(number: int, host: str, port: int, mix: str, stop: asyncio.Event) -> None:
    """One till.  `purchase`: sale after sale (open, calculate, confirm: two requests to
    processing, the confirm journaled first); `calculate`: one cheque calculated again
    and again."""
    till = Till(*await asyncio.open_connection(host, port))
    card = CARDS[number % 3]
    cheque = json.dumps({"card": card, "lines": LINES}).encode()
    try:
        cheque_id = None
        while not stop.is_set():
            if cheque_id is None or mix == "purchase":
                cheque_id = json.loads(await till.post("/v1/cheques", cheque))["id"]
            await till.post(f"/v1/cheques/{cheque_id}/calculate")
            if mix == "purchase":
                await till.post(f"/v1/cheques/{cheque_id}/confirm")
    finally:
        till.writer.close()


async def through_api(
    url: str, sandbox_url: str, clients: int, mix: str, warmup: float, seconds: float
) -> tuple[float, float, int]:
    """(busy fraction, processing calls/s, overlaps) with `clients` tills at once."""
    host, port = url.removeprefix("http://").split(":")
    stop = asyncio.Event()
    tills = [asyncio.create_task(pos_client(i, host, int(port), mix, stop)) for i in range(clients)]
    await asyncio.sleep(warmup)  # all tills connected and queued: measure the steady state
    before = await asyncio.to_thread(sandbox_status, sandbox_url)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    after = await asyncio.to_thread(sandbox_status, sandbox_url)
    wall = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tills)
    busy = (after["busyMicroseconds"] - before["busyMicroseconds"]) / 1e6
    return busy / wall, (after["requests"] - before["requests"]) / wall, int(after["overlaps"])


def bare(sandbox_url: str, seconds: float) -> tuple[float, float]:
    """(busy fraction, calls/s) of one bare httpx client sending back to back."""
    client = httpx.Client(
        base_url=sandbox_url,
        auth=("register-1", "secret-1"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    prepared = [(r.path, r.payload()) for r in requests(int(seconds * 400) + 10)]
    client.post(prepared[0][0], content=prepared[0][1])  # warm the connection
    before = sandbox_status(sandbox_url)
    calls, start = 0, time.perf_counter()
    for path, body in prepared[1:]:
        client.post(path, content=body).raise_for_status()
        calls += 1
        if time.perf_counter() - start >= seconds:
            break
    after = sandbox_status(sandbox_url)
    wall = time.perf_counter() - start
    client.close()
    return ((after["busyMicroseconds"] - before["busyMicroseconds"]) / 1e6) / wall, calls / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=50, help="POS clients at once")
    ap.add_argument("--latency", type=float, default=5.0, help="processing ms per request")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured time per side")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3, help="alternating runs; medians printed")
    ap.add_argument(
        "--mix",
        choices=["purchase", "calculate"],
        default="purchase",
        help="each till: whole sales (open, calculate, confirm), or one cheque calculated",
    )
    args = ap.parse_args()
    split = split_cpus()
    processing_cpus, register_cpus = split or (None, None)
    if register_cpus:
        os.sched_setaffinity(0, register_cpus)
    ours: list[float] = []
    base: list[float] = []
    rates: list[float] = []
    base_rates: list[float] = []
    overlaps = 0
    print(
        f"{args.clients} POS clients ({args.mix}), processing {args.latency:g} ms, "
        f"{args.runs} x {args.seconds:g} s a side"
    )
    with (
        sandbox_process(args.latency, processing_cpus, timed=True) as sandbox_url,
        service_process(sandbox_url, register_cpus) as (url, _),
    ):
        for run in range(1, args.runs + 1):
            b, b_rate = bare(sandbox_url, args.seconds)
            a, a_rate, overlaps = asyncio.run(
                through_api(url, sandbox_url, args.clients, args.mix, args.warmup, args.seconds)
            )
            ours.append(a)
            base.append(b)
            rates.append(a_rate)
            base_rates.append(b_rate)
            print(
                f"  run {run}: API busy {a:.1%} ({a_rate:.0f} calls/s), "
                f"bare busy {b:.1%} ({b_rate:.0f} calls/s), ratio {a / b:.3f}",
                flush=True,
            )
    a, b = statistics.median(ours), statistics.median(base)
    print(
        f"  processing busy through the API: {a:.1%} (target >= 80%); bare client {b:.1%}; "
        f"median ratio API/bare = {statistics.median(x / y for x, y in zip(ours, base, strict=True)):.3f}; "
        f"{statistics.median(rates):.0f} vs {statistics.median(base_rates):.0f} calls/s; "
        f"overlaps at processing: {overlaps}"
    )
    if overlaps:
        raise SystemExit("FAIL: processing saw overlapping requests of one register")


if __name__ == "__main__":
    main()
