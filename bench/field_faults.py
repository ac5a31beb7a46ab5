"""Field faults: a shift sold through the service while processing trickles, stalls,
swallows requests, or answers without end.

A real sandbox (its own process), a fault front on loopback (tests/fault_proxy.py) and
`posbridge run` (its own process).  The shift is sold in phases, one per fault, each
phase a few cheques (open, calculate, confirm) and a balance; after a faulted phase the
front passes again and the service replays its journal by itself.  Measured:

- the cashier's worst wait per fault (the slowest API answer of the phase), against the
  bound deadline + 0.5 s;
- the service's peak RSS (VmHWM) after each phase;
- processing's final ledger against the same shift sold with no fault at all, on a
  sandbox of its own: lost or doubled bonuses would show as a difference.

    .venv/bin/python bench/field_faults.py                 # deadline 2 s, 3 cheques a phase
    .venv/bin/python bench/field_faults.py --deadline 8    # the shipped default
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import sandbox_process
from bench._service import TOKEN, service_process
from bridge.loyalty.protocol import loads
from tests.fault_proxy import FaultProxy

CARD = "2775000000012"
GOODS = [("1001", "89.90"), ("2001", "45.50"), ("3001", "310.00"), ("5001", "150.00")]
PHASES: list[tuple[str, str, dict[str, Any]]] = [  # label, proxy fault, options
    ("online", "pass", {}),
    ("trickle", "trickle", {"interval": 0.5}),
    ("stall", "headers", {}),
    ("black hole", "blackhole", {}),
    ("huge answer", "huge", {}),
    ("endless answer", "endless", {}),
]


@dataclass
class Phase:
    label: str
    waits: list[float] = field(default_factory=list)
    offline_answers: int = 0
    queued: int = 0
    status: str = ""
    peak_rss_kb: int = 0
    drain_s: float = 0.0


def service(processing_url: str, deadline: float) -> AbstractContextManager[tuple[str, int]]:
    """`posbridge run` in its own process: (base URL, pid)."""
    return service_process(
        processing_url,
        processing=f"read_timeout = 5.0\ndeadline = {deadline}\n",
        journal="probe_min_seconds = 0.2\nprobe_max_seconds = 1.0\n",
    )


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cheque_lines(i: int) -> list[dict[str, Any]]:
    goods = [GOODS[(i + k) % len(GOODS)] for k in range(1 + i % 3)]
    return [
        {"goodsId": g, "name": f"goods {g}", "price": p, "quantity": str(1 + (i + k) % 2)}
        for k, (g, p) in enumerate(goods)
    ]


def timed(api: httpx.Client, phase: Phase, method: str, path: str, **kw: Any) -> Any:
    start = time.monotonic()
    response = api.request(method, path, **kw)
    phase.waits.append(time.monotonic() - start)
    response.raise_for_status()
    return loads(response.content)


def wait_drained(api: httpx.Client, limit: float = 60.0) -> float:
    """Until the service is online with an empty journal (a bench may poll its status)."""
    start = time.monotonic()
    while True:
        status = loads(api.get("/v1/status").content)
        if status["connectivity"] == "online" and status["journal"]["pending"] == 0:
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            raise RuntimeError(f"the journal did not drain in {limit:.0f} s: {status}")
        time.sleep(0.1)


def sell_shift(
    sandbox_url: str, deadline: float, per_phase: int, faults: bool
) -> tuple[list[Phase], dict[str, Any]]:
    parts = urlsplit(sandbox_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = FaultProxy(parts.hostname, parts.port)
    phases: list[Phase] = []
    try:
        with (
            service(proxy.url, deadline) as (base, pid),
            httpx.Client(base_url=base, headers={"X-Posbridge-Token": TOKEN}, timeout=60) as api,
        ):
            n = 0
            for label, fault, options in PHASES:
                phase = Phase(label)
                proxy.set_fault(fault if faults else "pass", **options)
                for _ in range(per_phase):
                    cheque = timed(
                        api,
                        phase,
                        "POST",
                        "/v1/cheques",
                        json={"card": CARD, "lines": cheque_lines(n)},
                    )
                    n += 1
                    calc = timed(api, phase, "POST", f"/v1/cheques/{cheque['id']}/calculate")
                    done = timed(api, phase, "POST", f"/v1/cheques/{cheque['id']}/confirm")
                    phase.offline_answers += bool(calc["offline"])
                    phase.queued += bool(done["queued"])
                balance = timed(api, phase, "GET", f"/v1/cards/{CARD}/balance")
                phase.offline_answers += bool(balance["offline"])
                phase.status = loads(api.get("/v1/status").content)["connectivity"]
                proxy.set_fault("pass")
                phase.drain_s = wait_drained(api)
                phase.peak_rss_kb = peak_rss_kb(pid)
                phases.append(phase)
    finally:
        proxy.close()
    return phases, ledger(sandbox_url)


def ledger(sandbox_url: str) -> dict[str, Any]:
    base = sandbox_url.rsplit("/publicapi", 1)[0]
    book = loads(httpx.get(f"{base}/sandbox/ledger/{CARD}", timeout=10).content)
    status = loads(httpx.get(f"{base}/sandbox/status", timeout=10).content)
    entries = sorted((e["kind"], e["status"], str(e["amount"])) for e in book.pop("entries"))
    return {"totals": book, "entries": entries, "status": status}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deadline", type=float, default=2.0, help="processing.deadline, seconds")
    ap.add_argument("--cheques", type=int, default=3, help="cheques sold per phase")
    args = ap.parse_args()
    started = time.monotonic()
    with sandbox_process() as reference_url:
        reference, online = sell_shift(reference_url, args.deadline, args.cheques, faults=False)
    with sandbox_process() as faulted_url:
        phases, faulted = sell_shift(faulted_url, args.deadline, args.cheques, faults=True)
    bound = args.deadline + 0.5
    print(
        f"field faults: {args.cheques} cheques + 1 balance per phase, deadline "
        f"{args.deadline:g} s (bound {bound:g} s), {time.monotonic() - started:.0f} s in all"
    )
    print(
        f"  {'fault':<15} {'worst wait':>10} {'offline':>8} {'queued':>7} {'status':>8} "
        f"{'drain':>7} {'peak RSS':>9}  verdict"
    )
    ok = True
    for phase, ref in zip(phases, reference, strict=True):
        worst = max(phase.waits)
        fine = worst <= bound
        ok &= fine
        print(
            f"  {phase.label:<15} {worst:>9.2f}s {phase.offline_answers:>8} {phase.queued:>7} "
            f"{phase.status:>8} {phase.drain_s:>6.1f}s {phase.peak_rss_kb / 1024:>7.1f}MB  "
            f"{'ok' if fine else 'OVER'} (online run: {max(ref.waits):.2f}s, "
            f"{ref.peak_rss_kb / 1024:.1f} MB)"
        )
    same_totals = faulted["totals"] == online["totals"]
    same_entries = faulted["entries"] == online["entries"]
    confirmed = sum(1 for e in faulted["entries"] if e[0] == "accrual" and e[1] == "final")
    expected = sum(1 for e in online["entries"] if e[0] == "accrual" and e[1] == "final")
    print(
        f"  ledger of card {CARD}: balance {faulted['totals']['balance']} "
        f"(online run {online['totals']['balance']}), accruals {confirmed}/{expected}, "
        f"duplicates recognised by processing {faulted['status'].get('duplicates', '?')}"
    )
    lost = max(0, expected - confirmed)
    doubled = max(0, confirmed - expected)
    print(
        f"  lost {lost}, doubled {doubled}; totals {'equal' if same_totals else 'DIFFERENT'}, "
        f"entries {'equal' if same_entries else 'DIFFERENT'}"
    )
    ok &= same_totals and same_entries
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
