"""Our loyalty client vs a bare httpx loop: N sequential calculate calls, same sandbox, same run.

Prints the median over rounds of (our time / bare time). Target <= 1.05 (issue 13).
Rounds alternate between the two sides so machine noise hits both alike.
The sandbox runs in its own process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import sandbox_process
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.protocol import (
    CalculateRequest,
    Cheque,
    ChequeLine,
    Identifier,
    Operation,
    ProcessingResponse,
    loads,
)
from bridge.loyalty.request import PreparedRequest, new_id

CARD = "2775000000012"


def requests(n: int) -> list[PreparedRequest]:
    cheque = Cheque(
        number="B1",
        date=datetime(2026, 11, 29, 15, 0),
        lines=[
            ChequeLine(
                position=1,
                goods_id="1001",
                name="Milk",
                price=Decimal("89.90"),
                quantity=Decimal(2),
                amount=Decimal("179.80"),
            ),
            ChequeLine(
                position=2,
                goods_id="5001",
                name="Soap",
                price=Decimal("150.00"),
                quantity=Decimal(1),
                amount=Decimal("150.00"),
            ),
        ],
    )
    pid = new_id()
    return [
        PreparedRequest(
            Operation.CALCULATE,
            CalculateRequest(
                operation_id=new_id(),
                operation_date=datetime.now().replace(microsecond=0),
                identifier=Identifier(value=CARD),
                cheque=cheque,
            ),
            purchase_id=pid,
        )
        for _ in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=300, help="calls per round")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with sandbox_process() as url, tempfile.TemporaryDirectory() as tmp:
        ours = LoyaltyClient(url, "register-1", "secret-1", lock_file=Path(tmp) / "lock")
        bare = httpx.Client(
            base_url=url,
            auth=("register-1", "secret-1"),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        ratios, t_ours, t_bare = [], [], []
        ours.send(requests(1)[0])  # warm both connections
        bare.post(requests(1)[0].path, content=requests(1)[0].payload())
        for _ in range(args.rounds):
            mine, theirs = requests(args.n), requests(args.n)
            bodies = [(r.path, r.payload()) for r in theirs]
            start = time.perf_counter()
            for r in mine:
                ours.send(r)
            a = time.perf_counter() - start
            start = time.perf_counter()
            for path, body in bodies:
                resp = bare.post(path, content=body)
                ProcessingResponse.model_validate(loads(resp.content))
            b = time.perf_counter() - start
            t_ours.append(a / args.n * 1e3)
            t_bare.append(b / args.n * 1e3)
            ratios.append(a / b)
        ours.close()
        bare.close()
    print(f"calculate x{args.n} x{args.rounds} rounds")
    print(f"  our client : median {statistics.median(t_ours):.3f} ms/call")
    print(
        f"  bare httpx : median {statistics.median(t_bare):.3f} ms/call (encode excluded, parse included)"
    )
    print(f"  median ratio ours/bare = {statistics.median(ratios):.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
