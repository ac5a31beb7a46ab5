"""One fiscal receipt through our Shtrih-M driver vs the same frames written raw, same emulator.

Both sides talk to one registrar emulator (sandbox/registrar) over one pty, the emulator
in a process of its own (a registrar is a device of its own; in-process, its thread and
ours would share the GIL; `--in-process` measures that way too).  The driver
prints a sale receipt (open, 5 items, 3 loyalty lines, extended close) while a recording
transport keeps every frame it sends; the baseline then writes exactly those frames with
the bare handshake (ENQ, NAK, frame, ACK, read the answer, ACK) on a raw file descriptor:
no retries, no parsing, no state.  Runs alternate to cancel drift; the figure is
median(driver) / median(raw).  The emulator's own work is in both.

    .venv/bin/python bench/fiscal_receipt.py [--runs 300]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import select
import statistics
import sys
import time
import tty
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.fiscal.base import FiscalItem, FiscalPayment, PaymentKind, TaxRate, TaxSystem
from drivers.fiscal.shtrih import ShtrihFiscalPrinter
from drivers.transport.serial import SerialSettings, SerialTransport
from sandbox.registrar import RegistrarEmulator

ITEMS = [
    FiscalItem(f"Товар №{n} молоко 3,2% 1 л", Decimal(n), Decimal("89.90"), Decimal("89.90") * n)
    for n in range(1, 6)
]
ITEMS[1] = FiscalItem("Хлеб", Decimal("0.5"), Decimal("45.00"), Decimal("22.50"), TaxRate.VAT10)
MESSAGES = ["Бонусы начислено: 20", "Баланс бонусов: 1 234,50", "Карта 500000******0004"]
PAYMENTS = [FiscalPayment(PaymentKind.CASH, Decimal("2000.00"))]


class Recording(SerialTransport):
    """Keeps the frames (writes starting with STX) the driver sends."""

    def __init__(self, url: str) -> None:
        super().__init__(url, SerialSettings(baudrate=115200, exclusive=False))
        self.frames: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.frames is not None and data[:1] == b"\x02":
            self.frames.append(data)
        super().write(data)


def receipt(printer: ShtrihFiscalPrinter) -> None:
    printer.begin_fiscal_receipt()
    for item in ITEMS:
        printer.print_rec_item(item)
    for line in MESSAGES:
        printer.print_rec_message(line)
    printer.end_fiscal_receipt(PAYMENTS, TaxSystem.OSN)


def read_exact(fd: int, size: int) -> bytes:
    out = b""
    while len(out) < size:
        if not select.select([fd], [], [], 2.0)[0]:
            raise TimeoutError(f"raw: {len(out)} of {size} bytes")
        out += os.read(fd, size - len(out))
    return out


def raw_receipt(fd: int, frames: list[bytes]) -> None:
    for frame in frames:
        os.write(fd, b"\x05")
        if read_exact(fd, 1) != b"\x15":
            raise RuntimeError("raw: the device is not idle")
        os.write(fd, frame)
        if read_exact(fd, 1) != b"\x06":
            raise RuntimeError("raw: frame not acknowledged")
        head = read_exact(fd, 2)
        answer = read_exact(fd, head[1] + 1)
        os.write(fd, b"\x06")
        if answer[1 if answer[0] != 0xFF else 2] != 0:
            raise RuntimeError(f"raw: device error in {answer.hex(' ')}")


def serve(conn: Connection) -> None:
    """The emulator's process: tells its pty, then the receipt count when asked to stop."""
    emulator = RegistrarEmulator()
    conn.send(emulator.start_pty())
    conn.recv()
    conn.send(len(emulator.documents))
    emulator.stop()


class Device:
    """The emulator, in this process or in a child process."""

    def __init__(self, in_process: bool) -> None:
        self.emulator: RegistrarEmulator | None = None
        if in_process:
            self.emulator = RegistrarEmulator()
            self.path = self.emulator.start_pty()
            return
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(target=serve, args=(child,))
        self.process.start()
        self.path = self.conn.recv()

    def stop(self) -> int:
        if self.emulator is not None:
            documents = len(self.emulator.documents)
            self.emulator.stop()
            return documents
        self.conn.send("stop")
        count: int = self.conn.recv()
        self.process.join(10)
        return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--in-process", action="store_true", help="the emulator in a thread")
    args = parser.parse_args()

    device = Device(args.in_process)
    path = device.path
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    transport = Recording(path)
    printer = ShtrihFiscalPrinter("bench", transport)
    printer.open()
    try:
        printer.status()  # device type and font width are asked once, then cached
        receipt(printer)  # the first receipt also opens the shift
        transport.frames = []
        receipt(printer)
        frames, transport.frames = transport.frames, None
        ours: list[float] = []
        raw: list[float] = []
        for _ in range(args.runs):
            start = time.perf_counter()
            receipt(printer)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            raw_receipt(fd, frames)
            raw.append(time.perf_counter() - start)
    finally:
        printer.close()
        os.close(fd)
        receipts = device.stop()

    expected = 2 + 2 * args.runs
    if receipts != expected:
        raise SystemExit(f"expected {expected} fiscal documents, the emulator has {receipts}")
    ours_ms, raw_ms = statistics.median(ours) * 1e3, statistics.median(raw) * 1e3
    print(f"frames per receipt: {len(frames)}; runs: {args.runs} each, alternating")
    print(f"driver  median {ours_ms:.3f} ms/receipt (p90 {_p90(ours) * 1e3:.3f})")
    print(f"raw     median {raw_ms:.3f} ms/receipt (p90 {_p90(raw) * 1e3:.3f})")
    print(f"ratio   {ours_ms / raw_ms:.3f}")


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


if __name__ == "__main__":
    main()
