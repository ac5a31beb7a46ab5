"""Relay latency: what the pass-through adds per scan (and per Shtrih-M frame) on ptys.

Scans: the scanner's pty master is written, the POS end is read until the whole scan with
its suffix is there.  Direct: the POS reads the scanner's own pty (what it does without
posbridge).  Relay: the POS reads its virtual port (`PtyPort`) while `ScannerRelay` reads
the scanner's pty through `SerialTransport`, frames, sorts (`classify`) and writes on.
Both set-ups live side by side and are measured in alternating batches, so drift and load
hit both; the figures are p50/p99 of each, the p99 added and the ratio.  A "bare
forwarder" (select, read, write on a thread of its own) shows what any relay hop costs.
The run is repeated (`--runs`) and the verdict taken on the median p99 added: on a
shared 2-core machine a single run's tail is often the scheduler's, for the bare
forwarder as much as for the relay.

Registrar (when `bridge/passthrough/registrar.py` is importable): one status request
(0x10) as a POS sends it -- ENQ, NAK, frame, ACK, answer, ACK -- straight to the registrar
emulator's pty vs through `RegistrarRelay` to another pty of the same emulator, which runs
in a process of its own (a registrar is a device of its own; in-process it would share
our GIL).

Goal (issue 15): <= 1 ms p99 added per scan or frame.

    .venv/bin/python bench/relay_latency.py [--scans 10000] [--frames 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pty
import select
import statistics
import sys
import threading
import time
import tty
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.passthrough.scanner import ScannerRelay
from drivers.device import PowerState
from drivers.fiscal.shtrih.frames import encode_frame, request_body
from drivers.transport.serial import SerialSettings, SerialTransport
from drivers.virtual_port import PtyPort

SCANS = [
    b"]E04006381333931\r",
    b"]d201046040600060002131\x1d93abcd\r",
    b"2212345012343\r",
    b"]E001234565\r",
]
GOAL_MS = 1.0


def new_pty() -> tuple[int, str]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def open_raw(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def read_exact(fd: int, size: int, timeout: float = 5.0) -> bytes:
    out = b""
    while len(out) < size:
        if not select.select([fd], [], [], timeout)[0]:
            raise SystemExit(f"only {len(out)} of {size} bytes within {timeout}s: stuck")
        out += os.read(fd, size - len(out))
    return out


class NullSession:
    """The register side does nothing here: no card, nothing to settle."""

    def card_presented(self, number: str, source: str) -> None:
        raise SystemExit("the bench scans no cards")

    def barcode_scanned(self, code: str) -> None:
        return None

    def take_card(self) -> str | None:
        return None

    def receipt_opened(self) -> None:
        return None

    def barcode_for_item(self) -> str | None:
        return None

    def settle(self, *args: Any, **kw: Any) -> Any:
        raise SystemExit("the bench closes no receipts")


def one_scan(write_fd: int, read_fd: int, i: int) -> float:
    data = SCANS[i % len(SCANS)]
    start = time.perf_counter()
    os.write(write_fd, data)
    got = read_exact(read_fd, len(data))
    end = time.perf_counter()
    if got != data:
        raise SystemExit(f"scan {i}: {data!r} arrived as {got!r}")
    return (end - start) * 1000


def alternate(n: int, batch: int, sides: Sequence[Callable[[int], float]]) -> list[list[float]]:
    """n measurements of each side, in alternating batches; milliseconds."""
    out: list[list[float]] = [[] for _ in sides]
    done = 0
    while done < n:
        k = min(batch, n - done)
        for side, times in zip(sides, out, strict=True):
            times.extend(side(done + i) for i in range(k))
        done += k
    return out


class BareForwarder:
    """The least any relay thread could do: select, os.read, os.write to the POS's pty.

    Shown beside the direct path to split the added latency into the hop itself (one
    more thread to wake, one more pty) and what ScannerRelay does on top of it.
    """

    def __init__(self) -> None:
        self.scanner_master, scanner_path = new_pty()
        self._device = open_raw(scanner_path)
        self._pos_master, pos_path = new_pty()
        self.pos = open_raw(pos_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if select.select([self._device], [], [], 0.05)[0]:
                os.write(self._pos_master, os.read(self._device, 4096))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for fd in (self._device, self._pos_master, self.pos, self.scanner_master):
            os.close(fd)


def bench_scans(n: int, batch: int) -> tuple[list[list[float]], dict[str, int]]:
    # direct: the POS opens the scanner's pty itself
    direct_master, direct_path = new_pty()
    direct_pos = open_raw(direct_path)
    bare = BareForwarder()
    # relay: the scanner's pty -> ScannerRelay -> PtyPort -> the POS
    scanner_master, scanner_path = new_pty()
    port = PtyPort(None, "bench-scanner")
    relay_pos = open_raw(port.slave_path)
    online = threading.Event()
    relay = ScannerRelay(
        port,
        SerialTransport(scanner_path),
        NullSession(),
        suffix=b"\r",
        name="bench",
        on_status=lambda power, _reason: online.set() if power is PowerState.ONLINE else None,
    )
    relay.start()
    try:
        if not online.wait(5):
            raise SystemExit(f"the relay did not open the scanner pty {scanner_path}")
        for i in range(len(SCANS)):  # warm up every path (imports, first classification)
            one_scan(direct_master, direct_pos, i)
            one_scan(bare.scanner_master, bare.pos, i)
            one_scan(scanner_master, relay_pos, i)
        times = alternate(
            n,
            batch,
            [
                lambda i: one_scan(direct_master, direct_pos, i),
                lambda i: one_scan(bare.scanner_master, bare.pos, i),
                lambda i: one_scan(scanner_master, relay_pos, i),
            ],
        )
        counts = relay.counters
    finally:
        relay.stop()
        bare.close()
        for fd in (direct_pos, direct_master, relay_pos, scanner_master):
            os.close(fd)
    if counts["scans"] != n + len(SCANS) or counts["failures"]:
        raise SystemExit(f"the relay sorted the scans wrongly: {counts}")
    return times, counts


# ---------------------------------------------------------------------- registrar

STATUS = encode_frame(request_body(0x10, 30))  # short status request, operator password 30


def serve_emulator(conn: Connection) -> None:
    """The emulator's process: two ptys onto one device (direct and relayed)."""
    from sandbox.registrar import RegistrarEmulator

    emulator = RegistrarEmulator()
    conn.send((emulator.start_pty(), emulator.start_pty()))
    conn.recv()
    conn.send(emulator.commands_seen_count(0x10))
    emulator.stop()


def one_status(fd: int) -> float:
    start = time.perf_counter()
    os.write(fd, b"\x05")
    if read_exact(fd, 1) != b"\x15":
        raise SystemExit("the registrar is not idle (ENQ not answered with NAK)")
    os.write(fd, STATUS)
    if read_exact(fd, 1) != b"\x06":
        raise SystemExit("the status frame was not acknowledged")
    head = read_exact(fd, 2)
    answer = read_exact(fd, head[1] + 1)
    os.write(fd, b"\x06")
    end = time.perf_counter()
    if answer[0] != 0x10 or answer[1] != 0:
        raise SystemExit(f"status answered with an error: {answer.hex(' ')}")
    return (end - start) * 1000


def bench_frames(n: int, batch: int) -> tuple[list[float], list[float], dict[str, int]] | str:
    try:
        from bridge.passthrough.registrar import RegistrarRelay
    except ImportError as exc:
        return f"RegistrarRelay not importable ({exc})"
    conn, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=serve_emulator, args=(child,))
    process.start()
    direct_path, device_path = conn.recv()
    direct_fd = open_raw(direct_path)
    port = PtyPort(None, "bench-kkt")
    pos_fd = open_raw(port.slave_path)
    device = SerialTransport(device_path, SerialSettings(baudrate=115200, exclusive=False))
    relay = RegistrarRelay(port, device, NullSession(), name="bench")
    relay.start()
    try:
        one_status(direct_fd)
        one_status(pos_fd)
        direct, relayed = alternate(
            n, batch, [lambda _i: one_status(direct_fd), lambda _i: one_status(pos_fd)]
        )
        counts = dict(relay.counters)
    finally:
        relay.stop()
        os.close(direct_fd)
        os.close(pos_fd)
        conn.send("stop")
        seen = conn.recv()
        process.join(10)
    if seen != 2 * n + 2:
        raise SystemExit(f"the emulator saw {seen} status requests, expected {2 * n + 2}")
    return direct, relayed, counts


# ---------------------------------------------------------------------- report


def quantiles(ms: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return q[49], q[98]


def report(what: str, sides: dict[str, list[float]]) -> float:
    """One run's figures; returns the p99 added by the relay (relay p99 - direct p99)."""
    print(f"  {what}: {len(sides['direct'])} each, alternating")
    for name, ms in sides.items():
        p50, p99 = quantiles(ms)
        print(f"    {name:<15} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   max {max(ms):7.3f} ms")
    (d50, d99), (r50, r99) = quantiles(sides["direct"]), quantiles(sides["relay"])
    print(
        f"    {'relay added':<15} p50 {r50 - d50:7.3f} ms   p99 {r99 - d99:7.3f} ms   "
        f"ratio p50 {r50 / d50:5.2f}x   p99 {r99 / d99:5.2f}x"
    )
    return r99 - d99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=2_000, help="0 skips the registrar")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--runs", type=int, default=3, help="the verdict is their median")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    added: dict[str, list[float]] = {"scan": [], "frame": []}
    for run in range(1, args.runs + 1):
        print(f"run {run}, load average {os.getloadavg()[0]:.1f}")
        (direct, bare, relayed), _ = bench_scans(args.scans, args.batch)
        added["scan"].append(
            report(
                "scans (write to the scanner pty -> whole scan readable at the POS)",
                {"direct": direct, "bare forwarder": bare, "relay": relayed},
            )
        )
        if args.frames <= 0:
            continue
        frames = bench_frames(args.frames, args.batch)
        if isinstance(frames, str):
            print(f"  registrar skipped: {frames}")
            continue
        direct, relayed, _ = frames
        added["frame"].append(
            report(
                "Shtrih-M status 0x10 (ENQ .. answer ACKed at the POS)",
                {"direct": direct, "relay": relayed},
            )
        )
    medians = {k: statistics.median(v) for k, v in added.items() if v}
    verdict = all(v <= GOAL_MS for v in medians.values())
    print(
        f"p99 added, median of {args.runs} runs (goal <= {GOAL_MS} ms): "
        + ", ".join(
            f"{k} {m:.3f} ms (runs {', '.join(f'{v:.3f}' for v in added[k])})"
            for k, m in medians.items()
        )
        + (" PASS" if verdict else " FAIL")
    )
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
