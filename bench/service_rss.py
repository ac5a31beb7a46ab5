"""Service memory over a long shift: RSS after every N purchases through the POS API.

Target: <= 60 MB after 10,000 purchases (issue 13) and not growing (last checkpoints flat).
The baseline printed alongside is the RSS of the service right after start, same run.
`--receipts` also fetches the loyalty block of every purchase (a POS that prints it on
its fiscal printer): the first one loads python-escpos's printer database.

`--abandoned` rings up cheques nobody finishes instead: each is opened, gets lines in two
appends, is calculated, and every tenth has 1.00 paid in bonuses (held at processing);
every `--shift` cheques the shift is closed (`POST /v1/shift/close`), which cancels them
all through the journal.  Target: RSS flat, and processing's held total back to 0.00
after every shift close.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import sandbox_process
from bench._service import TOKEN, service_process

LINES = [
    {"goodsId": "1001", "name": "Milk", "price": "89.90", "quantity": "2"},
    {"goodsId": "5001", "name": "Soap", "price": "150.00", "quantity": "1"},
]
CARDS = ["2775000000012", "2775000000029", None]
PAYER = "2775000000012"  # the active card with bonuses: its held total must come back to 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--receipts", action="store_true", help="fetch each loyalty block too")
    ap.add_argument(
        "--abandoned",
        action="store_true",
        help="cheques left open (calculated, some with bonuses paid), then expired",
    )
    ap.add_argument("--shift", type=int, default=100, help="cheques per shift (--abandoned)")
    args = ap.parse_args()
    if args.abandoned:
        abandoned(args)
        return
    with sandbox_process() as sandbox_url, service_process(sandbox_url) as (url, pid):
        api = httpx.Client(base_url=url, headers={"X-Posbridge-Token": TOKEN}, timeout=30)
        base = rss_mb(pid)
        print(f"start: {base:.1f} MB")
        points = []
        for i in range(1, args.n + 1):
            cid = api.post("/v1/cheques", json={"card": CARDS[i % 3], "lines": LINES}).json()["id"]
            api.post(f"/v1/cheques/{cid}/calculate").raise_for_status()
            api.post(f"/v1/cheques/{cid}/confirm").raise_for_status()
            if args.receipts:
                api.post("/v1/receipts/loyalty", json={"chequeId": cid}).raise_for_status()
            if i % args.every == 0:
                points.append(rss_mb(pid))
                print(f"{i:>6} purchases: {points[-1]:.1f} MB", flush=True)
        api.close()
    tail = points[len(points) // 2 :]
    growth = tail[-1] - tail[0] if len(tail) > 1 else 0.0
    print(
        f"final {points[-1]:.1f} MB (target <= 60), growth over the second half {growth:+.1f} MB,"
        f" ratio final/start {points[-1] / base:.2f}"
    )


def held(sandbox_url: str) -> Decimal:
    """Bonuses of PAYER held at processing (the sandbox's own admin view)."""
    base = sandbox_url.rsplit("/publicapi", 1)[0]
    answer = httpx.get(f"{base}/sandbox/ledger/{PAYER}", timeout=10).json(parse_float=Decimal)
    return Decimal(answer["held"])


def abandoned(args: argparse.Namespace) -> None:
    with sandbox_process() as sandbox_url, service_process(sandbox_url) as (url, pid):
        api = httpx.Client(base_url=url, headers={"X-Posbridge-Token": TOKEN}, timeout=60)
        base = rss_mb(pid)
        print(f"start: {base:.1f} MB")
        points: list[float] = []
        peak_held = Decimal(0)
        cancelled = 0
        for i in range(1, args.n + 1):
            card = CARDS[i % 3] if i % 10 else PAYER
            r = api.post("/v1/cheques", json={"card": card, "lines": LINES[:1]})
            r.raise_for_status()
            cid = r.json()["id"]
            api.post(f"/v1/cheques/{cid}/lines", json={"lines": LINES[1:]}).raise_for_status()
            api.post(f"/v1/cheques/{cid}/calculate").raise_for_status()
            if i % 10 == 0:
                api.post(f"/v1/cheques/{cid}/payment", json={"amount": "1.00"}).raise_for_status()
            if i % args.shift == 0:
                peak_held = max(peak_held, held(sandbox_url))
                closed = api.post("/v1/shift/close")
                closed.raise_for_status()
                cancelled += closed.json()["cancelled"]
                after = held(sandbox_url)
                if after:
                    raise SystemExit(f"after shift close {i // args.shift}: {after} still held")
            if i % args.every == 0:
                points.append(rss_mb(pid))
                print(
                    f"{i:>6} abandoned cheques: {points[-1]:.1f} MB, held now {held(sandbox_url)}",
                    flush=True,
                )
        closed = api.post("/v1/shift/close")
        cancelled += closed.json()["cancelled"]
        final_held = held(sandbox_url)
        api.close()
    tail = points[len(points) // 2 :]
    growth = tail[-1] - tail[0] if len(tail) > 1 else 0.0
    print(
        f"final {points[-1]:.1f} MB, growth over the second half {growth:+.1f} MB, ratio "
        f"final/start {points[-1] / base:.2f}; {cancelled} cheques cancelled by shift close, "
        f"held peak {peak_held}, held at the end {final_held} (target 0.00)"
    )


if __name__ == "__main__":
    main()
