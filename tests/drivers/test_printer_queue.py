"""The print queue against printers that go away and come back (emupos over TCP and a pty)."""

from __future__ import annotations

import os
import pty
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from emupos_helpers import Emupos, free_port, require_emupos

from drivers.device import ErrorEvent, Event
from drivers.printer import (
    JobState,
    PrinterConfig,
    PrintQueue,
    Receipt,
    ReceiptPrinter,
    UnknownJob,
)
from drivers.printer.status import Query
from drivers.reconnect import Backoff
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport

try:
    from tests.drivers.memory_transport import MemoryTransport
except ImportError:  # tests/drivers is not a package: pytest put its folder on sys.path
    from memory_transport import MemoryTransport  # type: ignore[no-redef,import-not-found]

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.2)
# Retries only when the test says so (retry_now), so the emupos event stream is connected
# before the job reaches the printer and cannot miss its "job completed" event.
ON_CUE = Backoff(initial=600.0, maximum=600.0)
WAIT = 20.0


@pytest.fixture
def queues() -> Iterator[list[PrintQueue]]:
    made: list[PrintQueue] = []
    yield made
    for queue in made:
        queue.stop()
        queue.printer.close()


def start_queue(
    queues: list[PrintQueue], printer: ReceiptPrinter, backoff: Backoff = FAST, **options: object
) -> PrintQueue:
    queue = PrintQueue(printer, backoff=backoff, **options)  # type: ignore[arg-type]
    queues.append(queue)
    queue.start()
    return queue


def receipt(text: str) -> Receipt:
    return Receipt().text(text).cut()


def waiting(queue: PrintQueue, job_id: str, reason: str) -> None:
    """Wait until the job has been tried and is queued for `reason`; it must not be dropped."""
    info = queue.wait_for(
        lambda job: job.state is JobState.QUEUED and reason in (job.waiting_for or ""),
        job_id,
        WAIT,
    )
    assert info.state is JobState.QUEUED and reason in (info.waiting_for or ""), info
    assert info.attempts >= 1


def done(queue: PrintQueue, job_id: str) -> None:
    info = queue.wait(job_id, timeout=WAIT)
    assert info.state is JobState.DONE, info


@pytest.fixture
def emupos_dir(tmp_path: Path) -> Path:
    require_emupos()
    return tmp_path


def test_tcp_printer_offline_then_back(emupos_dir: Path, queues: list[PrintQueue]) -> None:
    port = free_port()
    printer = ReceiptPrinter("front", TcpTransport("127.0.0.1", port, connect_timeout=2))
    queue = start_queue(queues, printer, ON_CUE)
    job = queue.submit(receipt("Чек при отключённом принтере"))
    waiting(queue, job, "cannot connect")  # connection refused

    emu = Emupos(emupos_dir, tcp_port=port, serial=False).start()
    try:
        queue.retry_now()
        done(queue, job)
        emu.wait_event("printer.job.completed")
        receipts = emu.receipts_completed()
        assert len(receipts) == 1  # printed exactly once
        assert "Чек при отключённом принтере" in emu.receipt_text(receipts[0])
        assert emu.unknown_commands() == []
    finally:
        emu.stop()


def test_pty_printer_missing_closed_and_back(emupos_dir: Path, queues: list[PrintQueue]) -> None:
    link = emupos_dir / "emupos" / "front"
    printer = ReceiptPrinter("front", SerialTransport(str(link)), status_timeout=0.5)
    queue = start_queue(queues, printer, ON_CUE)
    first = queue.submit(receipt("Первый"))
    waiting(queue, first, "cannot open")  # no such device yet

    emu = Emupos(emupos_dir, tcp_port=free_port()).start()
    queue.retry_now()
    done(queue, first)
    emu.wait_event("printer.job.completed")
    assert len(emu.receipts_completed()) == 1
    emu.stop()  # closes the pty master under our open port

    second = queue.submit(receipt("Второй"))
    waiting(queue, second, "front")
    emu = Emupos(emupos_dir, tcp_port=free_port()).start()  # same link, a new pty
    try:
        queue.retry_now()
        done(queue, second)
        emu.wait_event("printer.job.completed")
        receipts = emu.receipts_completed()
        assert len(receipts) == 1
        assert "Второй" in emu.receipt_text(receipts[0])
    finally:
        emu.stop()


def test_out_of_paper_waits_then_prints_once(emupos_dir: Path, queues: list[PrintQueue]) -> None:
    emu = Emupos(emupos_dir, serial=False).start()
    try:
        emu.set_fault("paper-out", True)
        printer = ReceiptPrinter("front", TcpTransport("127.0.0.1", emu.tcp_port))
        queue = start_queue(queues, printer)
        job = queue.submit(receipt("Без бумаги"))
        waiting(queue, job, "paper empty")
        assert emu.receipts_completed() == []
        emu.set_fault("paper-out", False)
        queue.retry_now()
        done(queue, job)
        emu.wait_event("printer.job.completed")
        assert len(emu.receipts_completed()) == 1
    finally:
        emu.stop()


class SilentPty:
    """A printer on a pty that takes data but never answers a status request."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.path = os.ttyname(self.slave)
        self.received = bytearray()
        self.cond = threading.Condition()
        self._stop_r, self._stop_w = os.pipe()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            chunk = os.read(self.master, 4096)
            with self.cond:
                self.received += chunk
                self.cond.notify_all()

    def wait_for(self, data: bytes, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: data in self.received, timeout)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self.thread.join(5)
        for fd in (self.master, self.slave, self._stop_r, self._stop_w):
            os.close(fd)


def test_unreadable_status_never_blocks_printing(queues: list[PrintQueue]) -> None:
    silent = SilentPty()
    try:
        printer = ReceiptPrinter("front", SerialTransport(silent.path), status_timeout=0.05)
        queue = start_queue(queues, printer)
        body = receipt("Статус неизвестен")
        job = queue.submit(body)
        done(queue, job)
        assert silent.wait_for(printer.render(body), WAIT)
        assert Query.PRINTER.command in silent.received  # it did ask, and went on
    finally:
        silent.close()


# --- queue bookkeeping on an in-memory transport -----------------------------------------------------


def test_jobs_print_in_order_and_are_queryable(queues: list[PrintQueue]) -> None:
    transport = MemoryTransport({q.command: b"\x12" for q in Query})  # healthy printer
    queue = start_queue(queues, ReceiptPrinter("p", transport, PrinterConfig()))
    ids = [queue.submit(receipt(f"Чек {n}")) for n in range(5)]
    for job_id in ids:
        done(queue, job_id)
    output = transport.output
    positions = [output.index(f"Чек {n}".encode("cp866")) for n in range(5)]
    assert positions == sorted(positions)
    assert {j.id for j in queue.jobs()} == set(ids)
    assert queue.job(ids[0]).to_json()["state"] == "done"


def test_unknown_job_id_is_named() -> None:
    queue = PrintQueue(ReceiptPrinter("p", MemoryTransport()))
    with pytest.raises(UnknownJob, match="no print job with id 'nope'"):
        queue.job("nope")


def test_unplugged_dummy_job_waits_then_gives_up_with_a_reason(queues: list[PrintQueue]) -> None:
    transport = MemoryTransport()
    transport.fail_writes = "device unplugged"
    printer = ReceiptPrinter("p", transport)
    events: list[Event] = []
    printer.add_listener(events.append)
    queue = start_queue(queues, printer, give_up_after=0.3)
    job = queue.submit(receipt("x"))
    info = queue.wait(job, timeout=WAIT)
    assert info.state is JobState.FAILED
    assert info.error is not None and "device unplugged" in info.error
    assert any(isinstance(e, ErrorEvent) and job in e.message for e in events)


def test_backoff_is_bounded() -> None:
    backoff = Backoff(initial=0.1, factor=3, maximum=2.0)
    delays = [backoff.delay(n) for n in (1, 2, 3, 4, 10, 100)]
    assert delays == pytest.approx([0.1, 0.3, 0.9, 2.0, 2.0, 2.0])


def test_finished_jobs_are_pruned_to_keep_finished(queues: list[PrintQueue]) -> None:
    transport = MemoryTransport({q.command: b"\x12" for q in Query})
    queue = start_queue(queues, ReceiptPrinter("p", transport), keep_finished=2)
    ids = [queue.submit(receipt(str(n))) for n in range(4)]
    done(queue, ids[-1])
    with pytest.raises(UnknownJob):
        queue.job(ids[0])
    assert [queue.job(i).state for i in ids[2:]] == [JobState.DONE, JobState.DONE]


class BrokenOnce(MemoryTransport):
    """A transport whose first write fails with an error no transport should raise."""

    def __init__(self) -> None:
        super().__init__({q.command: b"\x12" for q in Query})
        self.broken = True

    def write(self, data: bytes) -> None:
        if self.broken and not data.startswith(b"\x10\x04"):
            self.broken = False
            raise RuntimeError("driver bug")
        super().write(data)


def test_worker_survives_an_unexpected_error(queues: list[PrintQueue]) -> None:
    transport = BrokenOnce()
    queue = start_queue(queues, ReceiptPrinter("p", transport))
    job = queue.submit(receipt("после ошибки"))
    done(queue, job)
    assert queue.job(job).attempts == 2
    assert "после ошибки".encode("cp866") in transport.output
