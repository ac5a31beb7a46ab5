"""Journal faults: a shift sold through the service while the journal's disk is full,
and across a restart on a damaged journal.

A real sandbox and `posbridge run`, each in its own process, with the journal on an 8 MB
tmpfs (root is needed to mount it).  Measured per phase: the cashier's worst and median
wait (every API call of the phase), the service's peak RSS (VmHWM), and at the end
processing's ledger against the same shift sold online on a sandbox of its own (lost or
doubled bonuses would show as a difference).

- disk full: half the cheques of the phase are already paid by bonuses when a filler takes
  the last byte; every confirm and new cheque is answered 503 `journal_unavailable`,
  nothing stays held at processing; space returns, the till retries, all goes through.
- damaged journal: a phase is sold with processing unreachable (queued in the journal),
  the service stops, random bytes go into page 3 (header intact); the service starts
  on a fresh journal with the alarm, `posbridge journal salvage` brings the entries back,
  `posbridge journal replay` sends them.

    sudo .venv/bin/python bench/journal_faults.py
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._sandbox import ROOT, free_port, sandbox_process
from bench._service import TOKEN, service_process
from bridge.loyalty.protocol import loads

CARDS = ["2775000000012", "2775000000050", "2775000000067", None]
GOODS = [("1001", "89.90"), ("1002", "74.50"), ("2001", "55.00"), ("5001", "150.00")]
PAYING = ("2775000000012", "2775000000050")
N = 8  # cheques per phase; phase 3 (2N..3N) is sold offline, where bonuses cannot be paid


def sale(i: int) -> tuple[str | None, list[dict[str, Any]], str | None]:
    card = CARDS[i % len(CARDS)]
    lines = [
        {"goodsId": g, "name": f"goods {g}", "price": p, "quantity": str(1 + (i + k) % 2)}
        for k, (g, p) in enumerate(GOODS[(i + k) % len(GOODS)] for k in range(1 + i % 3))
    ]
    offline_phase = 2 * N <= i < 3 * N
    return card, lines, "5" if card in PAYING and i % 2 == 0 and not offline_phase else None


class Till:
    def __init__(self, url: str) -> None:
        self.api = httpx.Client(base_url=url, headers={"X-Posbridge-Token": TOKEN}, timeout=30)
        self.waits: list[float] = []

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        start = time.monotonic()
        r = self.api.request(method, path, **kw)
        self.waits.append(time.monotonic() - start)
        if r.status_code == 500:
            raise RuntimeError(f"{method} {path}: 500 {r.text}")
        return r

    def ring_up(self, i: int) -> str | None:
        card, lines, _ = sale(i)
        r = self.call("POST", "/v1/cheques", json={"card": card, "lines": lines})
        return str(loads(r.content)["id"]) if r.status_code == 201 else None

    def pay(self, i: int, cid: str) -> httpx.Response:
        r = self.call("POST", f"/v1/cheques/{cid}/calculate")
        amount = sale(i)[2]
        if r.status_code == 200 and amount:
            r = self.call("POST", f"/v1/cheques/{cid}/payment", json={"amount": amount})
        return r

    def confirm(self, cid: str) -> httpx.Response:
        return self.call("POST", f"/v1/cheques/{cid}/confirm")

    def sell(self, i: int) -> int:
        cid = self.ring_up(i)
        if cid is None:
            return 503
        r = self.pay(i, cid)
        return r.status_code if r.status_code != 200 else self.confirm(cid).status_code

    def status(self) -> Any:
        return loads(self.api.get("/v1/status").content)


@contextmanager
def service(processing_url: str, where: Path) -> Iterator[tuple[Till, int]]:
    with service_process(
        processing_url, where=where, journal="probe_min_seconds = 0.2\nprobe_max_seconds = 1.0\n"
    ) as (url, pid):
        till = Till(url)
        try:
            yield till, pid
        finally:
            till.api.close()


def cli(where: Path, *args: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "--config",
            str(where / "posbridge.toml"),
            "journal",
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def ledger(url: str) -> dict[str, Any]:
    base = url.rsplit("/publicapi", 1)[0]
    out = {}
    for card in [c for c in CARDS if c]:
        book = loads(httpx.get(f"{base}/sandbox/ledger/{card}", timeout=10).content)
        out[card] = {
            k: book[k] for k in ("balance", "accrued", "redeemed", "held", "pendingAccrual")
        }
    return out


def held(url: str) -> bool:
    return any(b["held"] or b["pendingAccrual"] for b in ledger(url).values())


def waits(values: list[float]) -> str:
    s = sorted(values)
    return f"max {s[-1] * 1000:.0f} ms, median {s[len(s) // 2] * 1000:.0f} ms"


def main() -> int:
    if os.geteuid() != 0:
        print("journal_faults: needs root to mount an 8 MB tmpfs for the journal", file=sys.stderr)
        return 2
    n = N
    rows = []
    with tempfile.TemporaryDirectory(prefix="posbridge-jfaults-") as tmp_name:
        tmp = Path(tmp_name)
        # the same shift sold online: the ledger to compare with
        with sandbox_process() as ref_url:
            (tmp / "ref").mkdir()
            with service(ref_url, tmp / "ref") as (till, _):
                for i in range(4 * n):
                    assert till.sell(i) == 200
            online = ledger(ref_url)

        disk = tmp / "disk"
        disk.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(disk)], check=True
        )
        try:
            with sandbox_process() as url:
                start = time.monotonic()
                with service(url, disk) as (till, pid):
                    normal_start = time.monotonic() - start
                    for i in range(n):
                        assert till.sell(i) == 200
                    opened = {i: till.ring_up(i) for i in range(n, n + n // 2)}
                    for i, cid in opened.items():
                        assert cid is not None and till.pay(i, cid).status_code == 200
                    filler = fill(disk)
                    till.waits.clear()
                    refused = []
                    for i in range(n, 2 * n):
                        cid = opened.get(i)
                        code = till.confirm(cid).status_code if cid else till.sell(i)
                        assert code == 503, code
                        refused.append((i, cid))
                    full_waits = list(till.waits)
                    status = till.status()
                    assert status["health"] == "degraded", status
                    assert not held(url), "something left held at processing"
                    rss = peak_rss_mib(pid)
                    filler.unlink()
                    till.waits.clear()
                    for i, cid in refused:
                        code = (
                            (till.pay(i, cid).status_code == 200 and till.confirm(cid).status_code)
                            if cid
                            else till.sell(i)
                        )
                        assert code == 200, code
                    assert till.status()["health"] == "ok"
                    rows.append(
                        (
                            "disk full",
                            f"{len(refused)} refused 503; {waits(full_waits)}",
                            f"{waits(till.waits)} after space returned",
                            rss,
                        )
                    )

                # damaged journal: a phase queued offline, then page 3 of the journal hit
                dead = f"http://127.0.0.1:{free_port()}/publicapi"
                with service(dead, disk) as (till, pid):
                    for i in range(2 * n, 3 * n):
                        assert till.sell(i) == 200  # queued: processing unreachable
                    queued = till.status()["journal"]["pending"]
                journal = disk / "journal.sqlite"
                data = bytearray(journal.read_bytes())
                data[2 * 4096 : 3 * 4096] = random.Random(3).randbytes(4096)
                journal.write_bytes(bytes(data))
                start = time.monotonic()
                with service(url, disk) as (till, pid):
                    started = time.monotonic() - start
                    status = till.status()
                    assert status["journal"]["state"] == "damaged", status
                    moved = status["journal"]["alarm"]["movedTo"]
                    till.waits.clear()
                    for i in range(3 * n, 4 * n):
                        assert till.sell(i) == 200
                    salvaged = cli(disk, "salvage", moved)
                    replayed = cli(disk, "replay")
                    cli(disk, "acknowledge")
                    assert till.status()["health"] == "ok"
                    rows.append(
                        (
                            "damaged journal",
                            f"start {started * 1000:.0f} ms (moved aside,"
                            f" fresh journal; a sound start took {normal_start * 1000:.0f}"
                            f" ms); {waits(till.waits)}",
                            f"{queued} queued; {salvaged.splitlines()[0].split(': ', 1)[-1]};"
                            f" {replayed.splitlines()[0]}",
                            peak_rss_mib(pid),
                        )
                    )
                final = ledger(url)
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
            shutil.rmtree(disk, ignore_errors=True)

    same = final == online
    for name, wait, note, rss in rows:
        print(f"{name:16} {wait} | {note} | peak RSS {rss:.0f} MiB")
    print(
        f"ledger vs the same shift sold online: {'equal (0 lost, 0 doubled)' if same else 'DIFFERENT'}"
    )
    if not same:
        print(f"  online {online}\n  faults {final}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
