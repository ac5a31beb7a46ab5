"""Scan latency: bytes written to a pty -> ScanEvent delivered to a listener.

Target: p99 <= 2 ms over 10,000 scans.  The baseline, measured in the same run on the
same kind of pty, is the least any reader could do: a thread blocked in select() that
os.read()s until the suffix and wakes the waiting thread.  The ratio shows what
pyserial, framing, AIM parsing and event dispatch add on top of that.

    .venv/bin/python bench/scan_latency.py [--scans 10000]
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import sys
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.device import DataEvent, Event, PowerState, StatusEvent
from drivers.scanner.device import ScannerConfig, ScannerDevice
from drivers.transport.serial import SerialTransport

SCANS = [
    b"]E04006381333931\r",
    b"]d2\x1d0104601234567893215Qbag!tGmZ1F\x1d91EE06\x1d92abcdefghijklmnopqrstuvwxyzABCD\r",
    b"]C101095011015300031714070410AB-123\x1d21XYZ\r",
    b"]E001234565\r",
]


def new_pty() -> tuple[int, str]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def measure(n: int, write: Callable[[bytes], object], wait: Callable[[], float]) -> list[float]:
    """Latency of n scans in milliseconds; `wait` returns the perf_counter of delivery."""
    out = []
    for i in range(n):
        data = SCANS[i % len(SCANS)]
        start = time.perf_counter()
        write(data)
        out.append((wait() - start) * 1000)
    return out


class Arrival:
    """One delivery at a time: the reader thread stamps the time and wakes the writer."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at = 0.0

    def hit(self) -> None:
        self.at = time.perf_counter()
        self.event.set()

    def wait(self) -> float:
        if not self.event.wait(5):
            raise SystemExit("no delivery within 5 s: the reader is stuck")
        self.event.clear()
        return self.at


def baseline(n: int) -> list[float]:
    master, path = new_pty()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    arrival, stop = Arrival(), threading.Event()

    def reader() -> None:
        buf = b""
        while not stop.is_set():
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            buf += os.read(fd, 4096)
            while b"\r" in buf:
                _, buf = buf.split(b"\r", 1)
                arrival.hit()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        return measure(n, lambda d: os.write(master, d), arrival.wait)
    finally:
        stop.set()
        thread.join()
        os.close(fd)
        os.close(master)


def driver(n: int) -> list[float]:
    master, path = new_pty()
    arrival, online = Arrival(), threading.Event()
    texts: list[str] = []

    def listener(event: Event) -> None:
        if isinstance(event, DataEvent):
            arrival.hit()
            texts.append(event.data.text)
        elif isinstance(event, StatusEvent) and event.power is PowerState.ONLINE:
            online.set()

    dev = ScannerDevice("bench", lambda: SerialTransport(path), ScannerConfig())
    dev.add_listener(listener)
    dev.open()
    dev.claim()
    dev.enable()
    if not online.wait(5):
        raise SystemExit(f"scanner did not come online on {path}")
    try:
        result = measure(n, lambda d: os.write(master, d), arrival.wait)
    finally:
        dev.close()
        os.close(master)
    if texts[0] != "4006381333931" or len(texts) != n:
        raise SystemExit(f"wrong scans delivered: {len(texts)} scans, first {texts[0]!r}")
    return result


def summary(name: str, ms: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    p50, p99 = q[49], q[98]
    print(
        f"{name:<31} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   "
        f"mean {statistics.fmean(ms):7.3f} ms   max {max(ms):7.3f} ms"
    )
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=10_000)
    args = parser.parse_args()
    n = args.scans
    print(f"{n} scans per run, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    base50, base99 = summary("baseline select+os.read", baseline(n))
    drv50, drv99 = summary("ScannerDevice (SerialTransport)", driver(n))
    print(f"ratio driver/baseline        p50 {drv50 / base50:5.2f}x   p99 {drv99 / base99:5.2f}x")
    verdict = "PASS" if drv99 <= 2.0 else "FAIL"
    print(f"target p99 <= 2 ms: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
