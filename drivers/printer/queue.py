"""A print queue: every receipt gets a job id and is printed once, or says why not.

A till cannot lose a receipt because the printer was out of paper for a minute, and it must
not block the sale either.  Jobs are printed in order by one worker thread; a job for a
printer that is unreachable, out of paper, open or offline stays QUEUED and is retried with
a capped exponential backoff (`drivers.reconnect.Backoff`, the policy reconnecting devices
use too).  A status that cannot be read (UNKNOWN) never blocks: the job is sent, and a
transport failure while sending puts it back in the queue.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from drivers.device import DeviceState, ErrorEvent
from drivers.printer.document import Receipt
from drivers.printer.escpos_printer import ReceiptPrinter
from drivers.reconnect import Backoff

log = logging.getLogger("posbridge.drivers.printer.queue")


class JobState(enum.StrEnum):
    QUEUED = "queued"
    PRINTING = "printing"
    DONE = "done"
    FAILED = "failed"


class UnknownJob(KeyError):
    """No job has this id; the message names it."""

    def __str__(self) -> str:
        return f"no print job with id {self.args[0]!r}"


@dataclass(frozen=True)
class JobInfo:
    id: str
    state: JobState
    attempts: int = 0
    waiting_for: str | None = None  # why a queued job is not printing right now
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "state": str(self.state),
            "attempts": self.attempts,
            "waiting_for": self.waiting_for,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


class PrintQueue:
    """Jobs for one printer.  `give_up_after` (seconds, None = never) turns a job FAILED."""

    def __init__(
        self,
        printer: ReceiptPrinter,
        *,
        backoff: Backoff | None = None,
        give_up_after: float | None = None,
        keep_finished: int = 1000,
    ) -> None:
        self.printer = printer
        self.backoff = backoff or Backoff()
        self.give_up_after = give_up_after
        self.keep_finished = keep_finished
        self._finished: deque[str] = deque()
        self._jobs: dict[str, JobInfo] = {}
        self._data: dict[str, bytes] = {}
        self._pending: deque[str] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake = False
        self._seq = itertools.count(1)

    # public API -----------------------------------------------------------------------------
    def submit(self, job: Receipt | bytes) -> str:
        """Queue a receipt (rendered now, so bad content fails here) and return its job id."""
        data = job if isinstance(job, bytes) else self.printer.render(job)
        job_id = f"{next(self._seq)}-{uuid.uuid4().hex[:12]}"
        with self._cond:
            self._jobs[job_id] = JobInfo(job_id, JobState.QUEUED, created_at=time.time())
            self._data[job_id] = data
            self._pending.append(job_id)
            self._cond.notify_all()
        return job_id

    def job(self, job_id: str) -> JobInfo:
        with self._cond:
            if job_id not in self._jobs:
                raise UnknownJob(job_id)
            return self._jobs[job_id]

    def jobs(self) -> list[JobInfo]:
        with self._cond:
            return list(self._jobs.values())

    def wait(
        self, job_id: str, states: frozenset[JobState] | None = None, timeout: float = 10.0
    ) -> JobInfo:
        """Block until the job reaches one of `states` (default: DONE or FAILED) or timeout."""
        wanted = states or frozenset({JobState.DONE, JobState.FAILED})
        with self._cond:
            self._cond.wait_for(lambda: self.job(job_id).state in wanted, timeout)
            return self.job(job_id)

    def wait_for(
        self, predicate: Callable[[JobInfo], bool], job_id: str, timeout: float = 10.0
    ) -> JobInfo:
        with self._cond:
            self._cond.wait_for(lambda: predicate(self.job(job_id)), timeout)
            return self.job(job_id)

    def retry_now(self) -> None:
        """Cut the current backoff short (e.g. the printer reported it is back)."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name=f"print-queue-{self.printer.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    # worker ---------------------------------------------------------------------------------
    def _update(self, job_id: str, **changes: object) -> None:
        with self._cond:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)  # type: ignore[arg-type]
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or bool(self._pending))
                if self._stopping:
                    return
                job_id = self._pending[0]
            delay = self._attempt(job_id)
            with self._cond:
                if delay is None:
                    self._pending.popleft()
                    self._data.pop(job_id, None)
                    self._forget_old(job_id)
                    continue
                self._wake = False
                self._cond.wait_for(lambda: self._stopping or self._wake, delay)

    def _forget_old(self, job_id: str) -> None:
        """Finished jobs stay queryable, but only the most recent `keep_finished` of them."""
        self._finished.append(job_id)
        while len(self._finished) > self.keep_finished:
            self._jobs.pop(self._finished.popleft(), None)

    def _attempt(self, job_id: str) -> float | None:
        """One try at the head job: None when it is finished, else the delay before the next."""
        info = self.job(job_id)
        attempts = info.attempts + 1
        reason = self._blocked()
        if reason is None:
            self._update(job_id, state=JobState.PRINTING, attempts=attempts, waiting_for=None)
            try:
                self.printer.write(self._data[job_id])
            except Exception as exc:  # the worker must outlive any printer failure
                reason = str(exc) or type(exc).__name__
                log.warning(
                    "%s: job %s not printed, will retry: %s", self.printer.name, job_id, reason
                )
            else:
                self._update(job_id, state=JobState.DONE, finished_at=time.time())
                return None
        else:
            self._update(job_id, attempts=attempts)
        if self.give_up_after is not None and info.created_at + self.give_up_after < time.time():
            message = f"gave up after {attempts} attempts: {reason}"
            self._update(
                job_id,
                state=JobState.FAILED,
                error=message,
                waiting_for=None,
                finished_at=time.time(),
            )
            self.printer.emit(ErrorEvent(self.printer.name, f"job {job_id} {message}"))
            return None
        self._update(job_id, state=JobState.QUEUED, waiting_for=reason)
        return self.backoff.delay(attempts)

    def _blocked(self) -> str | None:
        """Why printing cannot start now, or None; only known faults count."""
        printer = self.printer
        try:
            if printer.state is DeviceState.CLOSED:
                printer.open()
            if not printer.claimed:
                printer.claim()
            if not printer.enabled:
                printer.enable()
        except Exception as exc:
            return str(exc) or type(exc).__name__
        try:
            return printer.status().blocking_reason()
        except Exception as exc:  # an unreadable status never blocks printing
            log.warning("%s: status unreadable: %s", printer.name, exc)
            return None
