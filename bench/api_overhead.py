"""calculate through the POS API vs the loyalty client called directly; same sandbox, same run.

Prints the median over rounds of (API time / direct time). Target <= 1.30.
Sandbox and service each run in their own process; rounds alternate.  The POS side
uses the standard library's keep-alive http.client: we measure the service's overhead,
not that of a particular HTTP client library (httpx alone costs ~1.5 ms a call here).
"""

from __future__ import annotations

import argparse
import http.client
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
from bench._service import TOKEN, service_process
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.protocol import Cheque, ChequeLine

CARD = "2775000000012"
LINES = [
    {"goodsId": "1001", "name": "Milk", "price": "89.90", "quantity": "2"},
    {"goodsId": "5001", "name": "Soap", "price": "150.00", "quantity": "1"},
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    cheque = Cheque(number="B", date=datetime(2026, 11, 29, 15), lines=[
        ChequeLine(position=i + 1, goods_id=ln["goodsId"], name=ln["name"],
                   price=Decimal(ln["price"]), quantity=Decimal(ln["quantity"]),
                   amount=Decimal(ln["price"]) * Decimal(ln["quantity"]))
        for i, ln in enumerate(LINES)])
    with sandbox_process() as sandbox_url, service_process(sandbox_url) as (url, _), \
            tempfile.TemporaryDirectory() as tmp:
        direct = LoyaltyClient(sandbox_url, "register-1", "secret-1", lock_file=Path(tmp) / "l")
        api = httpx.Client(base_url=url, headers={"X-Posbridge-Token": TOKEN}, timeout=30)
        cid = api.post("/v1/cheques", json={"card": CARD, "lines": LINES}).json()["id"]
        host, port = url.removeprefix("http://").split(":")
        pos = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"X-Posbridge-Token": TOKEN}
        path = f"/v1/cheques/{cid}/calculate"

        def via_api() -> None:
            pos.request("POST", path, headers=headers)
            answer = pos.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"calculate through the API: HTTP {answer.status}")

        purchase = direct.purchase(cheque, CARD)
        via_api()
        purchase.calculate()
        ratios, t_api, t_direct = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.n):
                via_api()
            a = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(args.n):
                purchase.calculate()
            b = time.perf_counter() - start
            t_api.append(a / args.n * 1e3)
            t_direct.append(b / args.n * 1e3)
            ratios.append(a / b)
        direct.close()
        api.close()
        pos.close()
    print(f"calculate x{args.n} x{args.rounds} rounds")
    print(f"  through the POS API : median {statistics.median(t_api):.3f} ms/call")
    print(f"  client directly     : median {statistics.median(t_direct):.3f} ms/call")
    print(f"  median ratio api/direct = {statistics.median(ratios):.3f}  (target <= 1.30)")


if __name__ == "__main__":
    main()
