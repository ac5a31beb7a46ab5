"""One request in flight per register: the invariant the whole product depends on.

Processing locks up when one register sends requests in parallel, so every request
of this process takes a single turn, in arrival order: a FIFO queue served by one
sender thread.  A plain thread that finds nobody waiting runs its call on its own
thread while holding the turn (a hop to the sender thread and back costs ~90 us, a
tenth of a loopback round trip); asyncio tasks and anyone arriving while others wait
go through the queue.  Either way calls never overlap and never overtake.  Around each
request the turn's holder also holds an OS lock on a file shared by every posbridge
process of the register, so a `posbridge balance` typed by a technician while the
service runs waits its turn instead of overlapping.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class LockFileError(OSError):
    """A lock file cannot be opened (path and reason in the message)."""


class RegisterLock:
    """An exclusive `flock` on a file, shared by all posbridge processes of one register.

    The one flock helper of the register: the request lock (here), the journal's replay
    lock and the catalogue push lock are each one of these on a file of their own.  The
    request lock is shared with the posbridge group (0660); `purpose` names a private
    (0600) one in its errors.
    """

    def __init__(self, path: Path | None, *, purpose: str | None = None) -> None:
        self.path = path
        self.purpose = purpose
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            if self.path is None:
                raise LockFileError("no register lock file is configured")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                mode = 0o660 if self.purpose is None else 0o600
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
            except OSError as exc:
                if self.purpose is not None:
                    raise LockFileError(
                        f"cannot open the {self.purpose} lock file {self.path}: {exc.strerror}"
                    ) from None
                raise LockFileError(
                    f"cannot open the register lock file {self.path}: {exc.strerror}"
                    " (is this user in the posbridge group?)"
                ) from None
        return self._fd

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; with `wait=False`, False at once while another holder has it."""
        if self.path is None:
            return True
        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file, which also lets go of the lock if it is held."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_STOP = object()


class Sequencer:
    """Runs submitted calls one at a time, in submission order."""

    def __init__(self, lock: RegisterLock, name: str = "posbridge-sender") -> None:
        self._lock = lock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._name = name
        self._turn = threading.Lock()  # held by whoever runs a call, on whatever thread
        self._owner: int | None = None  # that thread's ident: its nested calls run at once
        self._state = threading.Lock()  # guards _waiting against a fast-path taker
        self._waiting = 0  # queued calls not yet run: nobody may overtake them

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the loyalty client is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, fut = item
            self._turn.acquire()  # a fast-path call may hold it; queued ones still come first
            with self._state:
                self._waiting -= 1
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        result = self._hold(fn)
                    except BaseException as exc:
                        fut.set_exception(exc)
                    else:
                        fut.set_result(result)
            finally:
                self._turn.release()

    def _hold(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the turn (already taken): flock around it, nested calls inline."""
        self._owner = threading.get_ident()
        try:
            self._lock.acquire()
            try:
                return fn()
            finally:
                self._lock.release()
        finally:
            self._owner = None

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        if self._owner == threading.get_ident():
            # A call made from inside a running call (e.g. a hook): it already holds the turn.
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)
            return fut
        self._ensure_thread()
        with self._state:
            self._waiting += 1
        self._queue.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], T]) -> T:
        if self._owner == threading.get_ident():
            return fn()  # nested: this thread holds the turn
        with self._state:
            free = not self._closed and self._waiting == 0 and self._turn.acquire(blocking=False)
        if not free:
            return self.submit(fn).result()
        try:
            return self._hold(fn)
        finally:
            self._turn.release()

    async def acall(self, fn: Callable[[], T]) -> T:
        """`call` for asyncio: a task cancelled before its call's turn (its HTTP client went
        away) takes the call out of the queue; once the call runs it finishes, and so
        does the wait for it (what it sent is answered or journaled, never left half)."""
        fut = self.submit(fn)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            if fut.cancel() or fut.cancelled():
                raise  # not started: the sender thread skips it
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return await asyncio.wrap_future(fut)

    def close(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop; give up waiting after `timeout` seconds.

        The owner cuts a stuck request short first (`LoyaltyClient.close`); the timeout
        is the last guard for a stop that must not hang.  A call still running then (on
        the sender thread, a daemon, or on its caller's thread) is left to end by
        itself, and the lock file stays open for it: closing it under a running call
        would turn the call's own error into EBADF at its release.
        """
        until = None if timeout is None else time.monotonic() + timeout
        with self._start_lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
            if thread.is_alive():
                return
        left = -1.0 if until is None else max(0.0, until - time.monotonic())
        if not self._turn.acquire(timeout=left):  # a fast-path call still runs
            return
        try:
            self._lock.close()
        finally:
            self._turn.release()
