"""One request in flight per register: the invariant the whole product depends on.

Processing locks up when one register sends requests in parallel, so every request
of this process takes a single turn, in arrival order: a FIFO queue served by a
sender thread.  A plain thread that finds nobody waiting runs its call on its own
thread while holding the turn (a hop to the sender thread and back costs ~90 us, a
tenth of a loopback round trip); asyncio tasks and anyone arriving while others wait
go through the queue.  Either way calls never overlap and never overtake.  Around each
request the turn's holder also holds an OS lock on a file shared by every posbridge
process of the register, so a `posbridge balance` typed by a technician while the
service runs waits its turn instead of overlapping.

With many tills at once processing must not wait for the register's own disk: a call
steps aside for its local work (see `Sequencer`), so the next request is on its way
while the journal fsyncs the last one's entry.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
import time
from collections import deque
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
MAX_SENDERS = 16  # threads serving the queue while earlier calls stepped aside
# The GIL's switch interval once a process queues calls for the register (the service).


class _Turn:
    """The register's turn: a lock handed straight to its next waiter (one thread woken,
    no stampede), where a call that stepped aside and comes back (`returning`) goes
    before any call still queued, so stepping aside never lets a call be overtaken."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._returning: deque[threading.Lock] = deque()
        self._queued: deque[threading.Lock] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1, returning: bool = False) -> bool:
        with self._mutex:
            if not self._held:  # free means nobody waits: a release hands it to a waiter
                self._held = True
                return True
            if not blocking:
                return False
            waiter = threading.Lock()
            waiter.acquire()
            line = self._returning if returning else self._queued
            line.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True  # handed over: it stayed held, for this thread
        with self._mutex:
            try:
                line.remove(waiter)
            except ValueError:
                return True  # handed over just as the wait timed out: it is ours
            return False

    def wanted(self) -> bool:
        """Somebody waits for the turn."""
        return bool(self._returning or self._queued)

    def release(self) -> None:
        with self._mutex:
            if self._returning:
                waiter = self._returning.popleft()
            elif self._queued:
                waiter = self._queued.popleft()
            else:
                self._held = False
                return
            waiter.release()
        # The next holder is about to send; this thread only has local work left.  Let
        # it run now rather than when this thread next lets go of the GIL (the switch
        # interval, 5 ms, is most of a request to processing).
        os.sched_yield()


class Sequencer:
    """Runs submitted calls one at a time, in submission order.

    A running call may step aside (`step_aside`) while it does local work that needs no
    request of its own: the journal's fsync before a must-reach step, the cheque's
    bookkeeping after its last answer.  The next queued call gets the turn meanwhile
    (another sender thread serves the queue), so processing is not left idle while the
    register writes to its disk; the call that stepped aside takes the turn back for its
    next request before any call still queued.  Requests still never overlap: each is
    sent only by the turn's holder.
    """

    def __init__(self, lock: RegisterLock, name: str = "posbridge-sender") -> None:
        self._lock = lock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()  # guards the threads, spares and closing
        self._closed = False
        self._name = name
        self._turn = _Turn()  # held by whoever runs a call, on whatever thread
        self._owner: int | None = None  # that thread's ident: its nested calls run at once
        self._state = threading.Lock()  # guards _waiting against a fast-path taker
        self._waiting = 0  # queued calls not yet run: nobody may overtake them
        self._active: int | None = None  # the sender thread serving the queue now
        self._spares: list[threading.Event] = []  # idle sender threads, each waiting on its own
        self._aside: set[int] = set()  # threads whose running call stepped aside

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the loyalty client is closed")
            if not self._threads:
                self._start_sender()

    def _start_sender(self) -> None:
        """A new sender thread that serves the queue at once (start lock held)."""
        thread = threading.Thread(
            target=self._sender, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        self._active = None  # the new thread claims the queue as it starts
        thread.start()

    def _sender(self) -> None:
        wake = threading.Event()
        while True:
            if self._serve():
                return  # stopped
            with self._start_lock:  # a call of ours stepped aside: another thread serves now
                if self._closed:
                    return
                self._spares.append(wake)
            wake.wait()
            wake.clear()
            if self._closed:
                return

    def _serve(self) -> bool:
        """Serve the queue until stopped (True), or until a call run here stepped aside
        and handed the queue over to another sender thread (False)."""
        me = threading.get_ident()
        self._active = me
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.put(_STOP)  # for the other sender threads, if any still serve
                return True
            fn, fut = item
            self._turn.acquire()  # a fast-path or returning call may hold it; queued ones wait
            with self._state:
                self._waiting -= 1
            if not fut.set_running_or_notify_cancel():
                self._turn.release()
            else:
                try:
                    result = self._hold(fn)
                except BaseException as exc:
                    fut.set_exception(exc)  # the turn is already released: others go on
                else:
                    fut.set_result(result)
            if self._active != me:
                return False

    def _hold(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the turn (already taken): flock around it, nested calls inline;
        the turn is let go at the end, unless `fn` stepped aside and did not take it back."""
        me = threading.get_ident()
        self._owner = me
        try:
            self._lock.acquire()
        except BaseException:
            self._owner = None
            self._turn.release()
            raise
        try:
            return fn()
        finally:
            if self._owner == me:
                self._owner = None
                try:
                    self._lock.release()
                finally:
                    self._turn.release()
            self._aside.discard(me)

    def step_aside(self, force: bool = False) -> bool:
        """Let the next call have the turn while the running one does local work (no
        request); its next request takes the turn back ahead of the queue.

        Only the turn's holder steps aside, and only while another call waits (queued
        or coming back).  When the holder is the thread serving the queue, another
        sender thread takes over the queue; if none can be started (MAX_SENDERS), the
        call keeps the turn, unless `force`: a call about to wait for something another
        call may hold (a cheque's lock) must not wait in the turn.  True if the turn
        was let go."""
        me = threading.get_ident()
        if self._owner != me:
            return False
        if not force and self._waiting == 0 and not self._turn.wanted():
            return False  # nobody to let go first: a till alone pays no hand-over
        if me == self._active:
            with self._start_lock:
                if self._closed:
                    handed = False
                elif self._spares:
                    self._active = None
                    self._spares.pop().set()
                    handed = True
                elif len(self._threads) < MAX_SENDERS:
                    self._start_sender()
                    handed = True
                else:
                    handed = False
            if not handed and not force:
                return False
        self._aside.add(me)
        self._owner = None
        try:
            self._lock.release()
        finally:
            self._turn.release()
        return True

    def _take_back(self) -> None:
        """A call that stepped aside takes the turn back before anything queued."""
        me = threading.get_ident()
        self._turn.acquire(returning=True)
        self._aside.discard(me)
        self._owner = me
        try:
            self._lock.acquire()
        except BaseException:
            self._aside.add(me)
            self._owner = None
            self._turn.release()
            raise

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        me = threading.get_ident()
        if self._owner == me or me in self._aside:
            # A call made from inside a running call (e.g. a hook): it holds the turn, or
            # takes it back ahead of the queue.
            try:
                fut.set_result(self.call(fn))
            except BaseException as exc:
                fut.set_exception(exc)
            return fut
        self._ensure_thread()
        with self._state:
            self._waiting += 1
        self._queue.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], T]) -> T:
        me = threading.get_ident()
        if self._owner == me:
            return fn()  # nested: this thread holds the turn
        if me in self._aside:
            self._take_back()  # kept until its call ends or steps aside again
            return fn()
        with self._state:
            free = not self._closed and self._waiting == 0 and self._turn.acquire(blocking=False)
        if not free:
            return self.submit(fn).result()
        return self._hold(fn)

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
        a sender thread, a daemon, or on its caller's thread) is left to end by itself,
        and the lock file stays open for it: closing it under a running call would turn
        the call's own error into EBADF at its release.
        """
        until = None if timeout is None else time.monotonic() + timeout
        with self._start_lock:
            self._closed = True
            threads, self._threads = self._threads, []
            spares, self._spares = self._spares, []
        for wake in spares:
            wake.set()
        if threads:
            self._queue.put(_STOP)
            for thread in threads:
                thread.join(None if until is None else max(0.0, until - time.monotonic()))
                if thread.is_alive():
                    return
        left = -1.0 if until is None else max(0.0, until - time.monotonic())
        if not self._turn.acquire(timeout=left):  # a fast-path call still runs
            return
        try:
            self._lock.close()
        finally:
            self._turn.release()
