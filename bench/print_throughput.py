"""Print throughput: one receipt through our printer layer vs plain python-escpos, same pty.

Target: median(ours) / median(python-escpos) <= 1.10.  Both print the same receipt (Cyrillic
header, item lines, bold total, EAN-13, native QR, cut) to a serial pty whose master is
drained by a reader thread; a run ends when the reader has every byte of the receipt, so
time spent in the tty is counted for both.  Runs alternate between the two to cancel drift.
The third figure is the same receipt through the PrintQueue, with the reader answering
DLE EOT as a healthy printer does (so it includes four status round trips per job).

    .venv/bin/python bench/print_throughput.py [--runs 300]
"""

from __future__ import annotations

import argparse
import contextlib
import io
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

from escpos.printer import Dummy, Serial

from drivers.printer import PrinterConfig, PrintQueue, Receipt, ReceiptPrinter
from drivers.transport.serial import SerialSettings, SerialTransport

ITEMS = [(f"Товар №{n} молоко 3,2% 1 л", f"{n * 37 % 500 + 10},90") for n in range(1, 13)]
EAN = "4600000000008"
QR = "https://example.com/check?fn=9999078900001234&i=12345&fp=1234567890"


def our_receipt() -> Receipt:
    receipt = Receipt().double("МАГАЗИН У ДОМА", align="center").rule()
    for name, price in ITEMS:
        receipt.pair(name, price)
    return receipt.rule().pair("ИТОГО", "4 321,00", bold=True).barcode(EAN).qr(QR).cut()


def escpos_receipt(p: Serial) -> None:
    p.hw("INIT")
    p.charcode("CP866")
    p.set(align="center", double_width=True, double_height=True)
    p.textln("МАГАЗИН У ДОМА")
    p.set(align="left", normal_textsize=True)
    p.textln("-" * 48)
    for name, price in ITEMS:
        p.textln(name + " " * (48 - len(name) - len(price)) + price)
    p.textln("-" * 48)
    p.set(bold=True)
    p.textln("ИТОГО" + " " * 35 + "4 321,00")
    p.set(bold=False)
    with contextlib.redirect_stdout(io.StringIO()):  # barcode() prints which renderer it used
        p.barcode(EAN, "EAN13", height=80, width=2)
    p.qr(QR, native=True, size=6)
    p.cut()


class Drain:
    """Reads the pty master; answers DLE EOT n like a healthy printer; counts bytes."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()  # slave kept open: no EIO between openers
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.count = 0
        self.cond = threading.Condition()
        self.tail = b""
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            select.select([self.master], [], [])
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            data = self.tail + chunk
            for n in range(1, 5):
                answers = data.count(b"\x10\x04" + bytes([n]))
                if answers:
                    os.write(self.master, b"\x12" * answers)
            self.tail = data[-2:]
            with self.cond:
                self.count += len(chunk)
                self.cond.notify_all()

    def wait_for(self, total: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= total, 10):
                raise RuntimeError(f"reader got {self.count} bytes, expected {total}")


def timed(drain: Drain, size: int, action: Callable[[], object]) -> float:
    target = drain.count + size
    start = time.perf_counter()
    action()
    drain.wait_for(target)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    drain = Drain()
    # not exclusive: python-escpos's Serial opens the same pty for the baseline
    port = SerialTransport(drain.path, SerialSettings(115200, exclusive=False))
    printer = ReceiptPrinter("bench", port, PrinterConfig(paper_width_mm=80))
    printer.open()
    printer.claim()
    printer.enable()
    plain = Serial(drain.path, baudrate=115200, dsrdtr=False, timeout=1)
    plain.open()

    ours_size = len(printer.render(our_receipt()))

    # python-escpos's own byte count for a receipt after the first: its encoder remembers the
    # code page across ESC @ and stops sending ESC t (the garbling our layer guards against)
    dummy = Dummy()
    escpos_receipt(dummy)
    first_size = len(dummy.output)
    dummy.clear()
    escpos_receipt(dummy)
    plain_size = len(dummy.output)

    def plain_print() -> None:
        escpos_receipt(plain)

    queue = PrintQueue(printer)
    queue.start()

    def queued() -> None:
        job = queue.submit(our_receipt())
        queue.wait(job)

    ours: list[float] = []
    theirs: list[float] = []
    through_queue: list[float] = []
    timed(drain, first_size, plain_print)
    for _ in range(10):  # warm-up
        timed(drain, ours_size, lambda: printer.print_receipt(our_receipt()))
        timed(drain, plain_size, plain_print)
    for i in range(args.runs):
        pair = [
            (ours, ours_size, lambda: printer.print_receipt(our_receipt())),
            (theirs, plain_size, plain_print),
        ]
        for results, size, action in pair if i % 2 == 0 else reversed(pair):
            results.append(timed(drain, size, action))
        if i % 10 == 0:
            status_bytes = 4 * 3
            through_queue.append(timed(drain, ours_size + status_bytes, queued))
    queue.stop()
    printer.close()
    plain.close()

    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(
        f"receipt bytes: ours {ours_size}, python-escpos {plain_size} "
        f"(first receipt {first_size}: later ones omit ESC t after ESC @)"
    )
    print(f"runs: {args.runs} each, alternating")
    print(f"ours (ReceiptPrinter.print_receipt): median {m_ours:.3f} ms")
    print(f"python-escpos Serial:                median {m_theirs:.3f} ms")
    print(f"through PrintQueue (+4 DLE EOT):     median {statistics.median(through_queue):.3f} ms")
    ratio = m_ours / m_theirs
    print(f"median ratio ours/python-escpos: {ratio:.3f} (target <= 1.10)")
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
