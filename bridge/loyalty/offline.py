"""Keep selling when processing is unreachable; lose nothing, double nothing.

`OfflineClient` sits between the register's purchase logic and the `LoyaltyClient`
and follows rule 3 of the contract:

- A request that must reach processing (discount = accrual, confirm, cancel, refund,
  cancel of a redemption) is first written to the journal, durably, then sent in
  journal order.  If processing cannot be reached the caller is told "queued".
- Offline, a redemption is refused at once (bonuses cannot be redeemed offline),
  calculate answers "no discount, offline" and balance answers "unknown (offline)".
- A redemption whose answer was lost is cancelled by a journaled cancel-operation, so
  a purchase that lost the connection mid-way never leaves bonuses held or taken.
- Replay sends entries one at a time through the same sequencer as live requests (a
  live cashier request may go between two replayed entries, never beside one), in
  original order with original ids and dates, under a lock file so that only one
  replayer per register runs, whatever process it is in.

When the journal cannot be written (disk full, read-only, I/O error), the rule is
"nothing is sent that the journal could not record, and nothing is left half-done":

- A must-reach step that cannot be journaled is not sent; the caller gets
  `JournalUnavailable` (the API's `journal_unavailable`, 503).  A repeat of a step
  already in the journal needs no write and goes on as usual.
- A discount or confirm that cannot be journaled cancels its purchase at processing
  (live, being unable to journal the cancel), so a redemption held earlier or a discount
  already sent never stays half-done; the cheque starts a fresh purchase on the
  cashier's retry.  If that purchase still has entries waiting in the journal, or
  processing cannot be reached either, the cancel is kept in memory and journaled
  ahead of everything else as soon as the journal takes writes again.
- A cancel (of a purchase or a redemption) that cannot be journaled is sent live, for
  the same reason; if it cannot be sent either, it is kept the same way.
- The degraded state ends with the first write that succeeds: nothing is restarted.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Entry, EntryStatus, Journal, JournalUnavailable
from bridge.loyalty.protocol import (
    ErrorCode,
    Identifier,
    Operation,
    ProcessingResponse,
    ResponseCheque,
    ResponseLine,
)
from bridge.loyalty.request import PreparedRequest
from bridge.loyalty.sequencer import RegisterLock
from drivers.reconnect import Backoff

log = logging.getLogger("posbridge.offline")

MUST_REACH = frozenset(
    {
        Operation.DISCOUNT,
        Operation.CONFIRM,
        Operation.CANCEL,
        Operation.REFUND,
        Operation.CANCEL_OPERATION,
    }
)

# Refusals that mean "this step already took effect (or had nothing to undo)": done.
_SETTLED: dict[Operation, frozenset[str]] = {
    Operation.CONFIRM: frozenset({ErrorCode.OPERATION_IS_CONFIRMED}),
    Operation.CANCEL: frozenset({ErrorCode.OPERATION_IS_CANCELED, ErrorCode.PURCHASE_NOT_FOUND}),
    Operation.CANCEL_OPERATION: frozenset(
        {
            ErrorCode.OPERATION_NOT_FOUND,
            ErrorCode.OPERATION_IS_CANCELED,
            ErrorCode.PURCHASE_NOT_FOUND,
        }
    ),
}

REPLAY_BATCH = 16  # entries sent in one turn of the sender thread
OFFLINE_NOTICE = "Offline: bonuses will be accrued once the connection is restored"
NO_REDEMPTION_OFFLINE = "Bonuses cannot be redeemed offline"


class Connectivity(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    RECOVERING = "recovering"  # processing answers again; the journal backlog is being sent


class ReplayOutcome(enum.StrEnum):
    """What sending one journal entry came to (a drain's progress reports it per entry)."""

    DONE = "done"  # processing took it, or it had already taken effect
    REJECTED = "rejected"  # processing refused it: kept for a technician, the drain goes on
    STOPPED = "stopped"  # not answered (or a retryable refusal): the drain stops, in order


class LocalResponse(ProcessingResponse):
    """An answer made on the register, not by processing."""

    local: Literal["queued", "offline", "already_processed"]
    journal_seq: int | None = None
    warning: str | None = None


class RedemptionOffline(errors.LoyaltyError):
    """Offline, bonuses cannot be redeemed; the cashier takes payment otherwise."""

    @property
    def cashier_text(self) -> str:
        return NO_REDEMPTION_OFFLINE


JITTER = 0.2  # +-20 %: registers of a chain that lost processing together do not retry in step


def jittered(delay: float, maximum: float) -> float:
    return min(maximum, delay * (1 + random.uniform(-JITTER, JITTER)))  # noqa: S311


@dataclass
class DrainReport:
    sent: int = 0
    done: int = 0
    rejected: list[Entry] = field(default_factory=list)
    stopped: str | None = None  # why the drain stopped before the journal was empty
    busy: bool = False  # another replayer holds the journal


class ReplayLock:
    """One replayer per register: a thread lock inside the process, the register's flock
    helper across processes.  The file is closed after each drain, so an idle client
    holds no descriptor for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = RegisterLock(path, purpose="journal replay")
        self._thread_lock = threading.Lock()

    def acquire(self, wait: bool) -> bool:
        if not self._thread_lock.acquire(blocking=wait):
            return False
        try:
            taken = self._file.acquire(wait)
        except BaseException:
            self._thread_lock.release()
            raise
        if not taken:
            self._file.close()
            self._thread_lock.release()
        return taken

    def release(self) -> None:
        self._file.close()  # closing the file lets go of the flock
        self._thread_lock.release()


class OfflineClient:
    """A `Sender` for purchases that stays correct whether processing answers or not."""

    def __init__(
        self,
        client: LoyaltyClient,
        journal: Journal,
        *,
        max_pending: int = 10_000,
        max_age_seconds: float = 72 * 3600,
        probe_min: float = 2.0,
        probe_max: float = 60.0,
        on_change: Callable[[Connectivity], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        retention_seconds: float = 7 * 86400,
    ) -> None:
        self.client = client
        self.journal = journal
        self.max_pending = max_pending
        self.max_age_seconds = max_age_seconds
        self.backoff = Backoff(probe_min, probe_max)  # the drivers' bounded exponential one
        self.on_change = on_change
        self.on_warning = on_warning
        self.retention_seconds = retention_seconds
        self._pruned_at = float("-inf")
        self._replay_lock = ReplayLock(journal.path.with_name(journal.path.name + ".replay.lock"))
        # Cashier threads, the replayer and the sender thread all move the state.  A
        # move and the check it depends on happen under this lock, in one step: above all,
        # ONLINE is set only while the journal holds nothing pending, and a must-reach step
        # decides under it whether to send itself (ONLINE) or leave it to the replayer.
        self._state_lock = threading.RLock()
        self._state = (
            Connectivity.RECOVERING if journal.first_pending_seq() else Connectivity.ONLINE
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # undo steps (cancels) that could neither be journaled nor sent: journaled first
        # as soon as the journal takes writes again (lost only if the process dies first)
        self._owed: list[PreparedRequest] = []
        self._owed_lock = threading.Lock()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> Connectivity:
        """A snapshot, for views; decisions read it under the state lock (`_is_online`)."""
        return self._state

    def _set_state(
        self, state: Connectivity, reason: str = "", *, only_from: Connectivity | None = None
    ) -> bool:
        """Move to `state` (with `only_from`: only from that state); True if it moved.

        `on_change` is called under the lock, so listeners see the moves in the order
        they happened (a cashier thread and the replayer may move it at once).
        """
        with self._state_lock:
            current = self._state
            if state is current or (only_from is not None and current is not only_from):
                return False
            log.warning("processing connectivity %s -> %s %s", current, state, reason)
            self._state = state
            if state is Connectivity.ONLINE:
                self.backoff.reset()
            if self.on_change is not None:
                self.on_change(state)
        self._wake.set()
        return True

    def _is_online(self) -> bool:
        with self._state_lock:
            return self._state is Connectivity.ONLINE

    def _online_if_caught_up(self) -> bool:
        """ONLINE, if nothing is pending: checked and set in one step, so a step journaled
        in between is either seen here or sees ONLINE and sends itself."""
        with self._state_lock:
            if self.journal.first_pending_seq() is not None:
                return False
            self._set_state(Connectivity.ONLINE)
            return True

    def _went_offline(self, exc: errors.LoyaltyError) -> None:
        self._set_state(Connectivity.OFFLINE, f"({exc})")

    # ------------------------------------------------------------------ Sender protocol

    def prepare(
        self,
        op: Operation,
        *,
        purchase_id: str | None = None,
        target_operation_id: str | None = None,
        identifier: Identifier | None = None,
        **fields: Any,
    ) -> PreparedRequest:
        return self.client.prepare(
            op,
            purchase_id=purchase_id,
            target_operation_id=target_operation_id,
            identifier=identifier,
            **fields,
        )

    def send(self, request: PreparedRequest) -> ProcessingResponse:
        if request.op in MUST_REACH:
            return self._send_journaled(request)
        # Decided on the sender thread when this call's turn comes, not when it queued: a
        # call that waited behind a request that took the register offline is answered
        # offline at once instead of waiting out its own deadline too.
        return self.client.exclusive().call(lambda: self._send_live(request))

    def _send_live(self, request: PreparedRequest) -> ProcessingResponse:
        if self._state is Connectivity.OFFLINE:
            return self._offline_answer(request)
        try:
            return self.client.send(request)
        except errors.BusinessError:
            raise  # processing answered and refused: the caller acts on it
        except errors.LoyaltyError as exc:
            if not exc.retryable:
                raise  # e.g. wrong credentials: a technician must fix the config
            # unreachable, or an answer we cannot read (5xx, HTML, broken JSON): the step
            # may or may not have been applied, so answer as offline does
            if exc.offline:
                self._went_offline(exc)
            if request.op is Operation.PAYMENT:
                self._undo_lost_payment(request)
                raise RedemptionOffline(f"{request.describe()}: {exc}") from exc
            return self._offline_answer(request)

    def _send_journaled(self, request: PreparedRequest) -> ProcessingResponse:
        # Journaling needs no turn: a caller holding it steps aside, so the next call is
        # sent while the fsync runs, and takes it back (ahead of the queue) to send this.
        turn = self.client.exclusive()
        turn.step_aside()
        try:
            self._journal_owed()
            entry = self.journal.append(request)
        except JournalUnavailable as exc:
            return self._unjournaled(request, exc)
        warning = self._check_limits()
        if entry.status == EntryStatus.PENDING and self._is_online():
            # Online or not is decided after the entry is durable: a step journaled while
            # the replayer catches up is either seen by its last look at the journal or
            # sees ONLINE here and sends itself (with any entry before it).  Offline it is
            # queued at once, never waiting for the turn behind the replayer's attempt;
            # online it is decided again in the turn, which a request that took the
            # register offline may have held meanwhile.
            turn.call(lambda: self._send_in_turn(entry.seq))
            turn.step_aside()  # reading the outcome back needs no turn
        entry = self.journal.get(entry.seq) or entry
        if entry.status == EntryStatus.DONE and entry.result is not None:
            response = ProcessingResponse.model_validate(entry.result)
            if response.ok:
                return response
            return LocalResponse(
                code=ErrorCode.OK, local="already_processed", journal_seq=entry.seq, warning=warning
            )
        if entry.status == EntryStatus.REJECTED and entry.result is not None:
            raise errors.business_error(ProcessingResponse.model_validate(entry.result))
        self._set_state(
            Connectivity.RECOVERING,
            "(a request is waiting to be resent)",
            only_from=Connectivity.ONLINE,
        )
        return LocalResponse(
            code=ErrorCode.OK,
            local="queued",
            journal_seq=entry.seq,
            cashier_message=OFFLINE_NOTICE,  # the receipt's own notice is in the receipt language
            warning=warning,
        )

    def _send_in_turn(self, seq: int) -> None:
        """Send the pending entries up to `seq`, in journal order, if online."""
        if not self._is_online():
            return  # queued: the replayer sends it once processing answers again
        try:
            self.drain(until=seq, wait=False)
        except JournalUnavailable as exc:
            # sent, but its done-mark could not be written: it stays pending and is
            # resent later, which processing recognises by its operationId
            log.warning("journal entry %s: %s", seq, exc)

    def _undo_lost_payment(self, payment: PreparedRequest) -> None:
        """The redemption may or may not have reached processing: cancel it, in order."""
        undo = self.client.prepare(
            Operation.CANCEL_OPERATION,
            purchase_id=payment.purchase_id,
            target_operation_id=payment.operation_id,
            identifier=payment.body.identifier,
        )
        try:
            self._journal_owed()
            self.journal.append(undo)
        except JournalUnavailable as exc:
            log.error("%s; cancelling the redemption live", exc)
            try:
                self._send_undo(undo)
            except errors.BusinessError:
                pass  # logged; the redemption is refused to the cashier all the same
            return
        # the replayer sends it now, not at the next sale
        self._set_state(
            Connectivity.RECOVERING,
            "(a lost redemption is to be cancelled)",
            only_from=Connectivity.ONLINE,
        )

    # ------------------------------------------------------------------ journal unavailable

    def _unjournaled(self, request: PreparedRequest, exc: JournalUnavailable) -> ProcessingResponse:
        """A must-reach step the journal cannot take: see the module's rule."""
        if request.op in (Operation.CANCEL, Operation.CANCEL_OPERATION):
            response = self._send_undo(request)
            if response is not None and response.ok:
                return response
            if response is not None:  # nothing (more) to undo, as a journaled one finishes
                return LocalResponse(code=ErrorCode.OK, local="already_processed")
            raise exc.with_undone(
                "the cancel is kept and sent once the journal or processing is back"
            ) from exc
        if request.op in (Operation.DISCOUNT, Operation.CONFIRM) and request.purchase_id:
            raise exc.with_undone(self._undo_purchase(request, request.purchase_id)) from exc
        raise exc

    def _undo_purchase(self, request: PreparedRequest, pid: str) -> str | None:
        """Cancel at processing whatever purchase `pid` started (a held redemption, a sent
        discount): `request`, the step that would have finished it, cannot be journaled."""
        try:
            earlier = self.journal.for_purchase(pid)
        except JournalUnavailable:
            earlier = []
        if any(e.op == Operation.CONFIRM.value for e in earlier):
            return None  # confirmed (or being confirmed) already: nothing half-done
        cancel = self.client.prepare(
            Operation.CANCEL, purchase_id=pid, identifier=request.body.identifier
        )
        if any(e.status == EntryStatus.PENDING for e in earlier):
            self._owe(cancel)  # it must follow those entries in journal order
            return f"purchase {pid} will be cancelled at processing once the journal is back"
        try:
            answer = self._send_undo(cancel)
        except errors.BusinessError as refused:
            return f"purchase {pid} could not be cancelled at processing: {refused.code}"
        if answer is None:
            return f"purchase {pid} will be cancelled at processing once it is reachable"
        if not answer.ok:
            return f"purchase {pid} had nothing at processing to cancel"
        return f"purchase {pid} cancelled at processing (held bonuses released)"

    def _send_undo(self, undo: PreparedRequest) -> ProcessingResponse | None:
        """Send a cancel live; None (and kept for later) when processing cannot be reached."""
        try:
            return self.client.send(undo)
        except errors.BusinessError as exc:
            if exc.code in _SETTLED.get(undo.op, frozenset()):
                return exc.response  # nothing (more) to undo
            log.error("%s refused by processing: %s", undo.describe(), exc)
            raise
        except errors.LoyaltyError as exc:
            if exc.offline:
                self._went_offline(exc)
            self._owe(undo)
            return None

    def _owe(self, undo: PreparedRequest) -> None:
        with self._owed_lock:
            if all(o.operation_id != undo.operation_id for o in self._owed):
                self._owed.append(undo)
                log.error("%s kept in memory until the journal takes writes again", undo.describe())

    def _journal_owed(self) -> None:
        """Journal the kept undo steps, first and in order (raises while it cannot)."""
        with self._owed_lock:
            while self._owed:
                self.journal.append(self._owed[0])
                self._owed.pop(0)
                self._set_state(
                    Connectivity.RECOVERING,
                    "(a kept cancel is to be sent)",
                    only_from=Connectivity.ONLINE,
                )

    @property
    def owed(self) -> int:
        """Cancels waiting in memory for the journal."""
        return len(self._owed)

    def journal_health(self) -> dict[str, Any]:
        """The journal's state for status and metrics; while degraded, checks (at most
        every few seconds) whether it takes writes again, and journals what was kept."""
        if self._owed and self.journal.failure is None:
            try:
                self._journal_owed()
            except JournalUnavailable:
                pass
        health = self.journal.health()
        health["keptInMemory"] = self.owed
        return health

    def _offline_answer(self, request: PreparedRequest) -> ProcessingResponse:
        if request.op is Operation.PAYMENT:
            raise RedemptionOffline(f"{request.describe()}: processing unreachable")
        if request.op in (Operation.CALCULATE, Operation.AVAILABLE):
            cheque = getattr(request.body, "cheque", None)
            lines = cheque.lines if cheque is not None else []
            return LocalResponse(
                code=ErrorCode.OK,
                local="offline",
                cashier_message="Offline: no discount calculated",
                cheque=ResponseCheque(
                    total_amount=sum((line.amount for line in lines), Decimal(0)),
                    total_discount=Decimal(0),
                    lines=[
                        ResponseLine(
                            position=line.position, amount=line.amount, discount=Decimal(0)
                        )
                        for line in lines
                    ],
                ),
                available_amount=Decimal(0),
                available_bonus_amount=Decimal(0),
            )
        return LocalResponse(
            code=ErrorCode.OK, local="offline", cashier_message="Balance unknown (offline)"
        )

    def _check_limits(self) -> str | None:
        pending, oldest = self.journal.pending_summary()
        age = None if oldest is None else max(0.0, time.time() - oldest)
        problems = []
        if pending > self.max_pending:
            problems.append(f"{pending} requests waiting (limit {self.max_pending})")
        if age is not None and age > self.max_age_seconds:
            problems.append(
                f"oldest waiting {age / 3600:.1f} h (limit {self.max_age_seconds / 3600:.1f} h)"
            )
        if not problems:
            return None
        text = "Loyalty offline journal: " + "; ".join(problems) + ". Call support."
        log.error("%s", text)
        if self.on_warning is not None:
            self.on_warning(text)
        return text

    # ------------------------------------------------------------------ replay

    def drain(
        self,
        until: int | None = None,
        wait: bool = True,
        progress: Callable[[Entry, ReplayOutcome], None] | None = None,
    ) -> DrainReport:
        """Send pending entries in order until the journal is empty, `until` is passed,
        or processing fails; `wait=False` returns at once if another replayer runs."""
        report = DrainReport()
        if not self._replay_lock.acquire(wait):
            report.busy = True
            return report
        try:
            self._drain_locked(report, until, progress)
        finally:
            self._replay_lock.release()
        if report.stopped is None:
            # a live step's drain while online has no state to move (and no query to
            # make in the turn): entries after `until` are their own steps' to send
            live = until is not None and self._state is Connectivity.ONLINE
            if live or self._online_if_caught_up():
                if report.done:
                    self.prune()
            else:  # journaled after this drain's last page: the replayer goes again at once
                self._wake.set()
        return report

    def prune(self, force: bool = False) -> int:
        """Forget sent entries older than the retention period (at most hourly)."""
        now = time.monotonic()
        if not force and now - self._pruned_at < 3600:
            return 0
        self._pruned_at = now
        removed = self.journal.prune(self.retention_seconds)
        if removed:
            log.info(
                "journal: pruned %d sent entries older than %.0f days",
                removed,
                self.retention_seconds / 86400,
            )
        return removed

    def _drain_locked(
        self,
        report: DrainReport,
        until: int | None,
        progress: Callable[[Entry, ReplayOutcome], None] | None,
    ) -> None:
        after = 0
        while True:
            page = self.journal.pending_page(after, REPLAY_BATCH)
            if until is not None:
                page = [entry for entry in page if entry.seq <= until]
            if not page:
                return
            if not self.journal.is_durable(page[-1].seq):
                # an entry is sent only once it is on disk: one appended by another
                # thread (or process) may still be in its fsync.  Read again after: one
                # whose own fsync failed meanwhile is taken back, and must not go out.
                last = page[-1].seq
                self.journal.sync_through(last)
                page = [e for e in self.journal.pending_page(after, REPLAY_BATCH) if e.seq <= last]
                if not page:
                    after = last
                    continue

            def batch(page: list[Entry] = page) -> bool:
                for entry in page:
                    outcome = self._replay_one(entry, report)
                    if progress is not None:
                        progress(entry, outcome)
                    if outcome is ReplayOutcome.STOPPED:
                        return False
                return True

            # A small batch per turn of the sender thread: no thread hop per entry, and
            # a live cashier request still goes between two batches (tens of ms apart).
            if not self.client.exclusive().call(batch):
                return
            after = page[-1].seq

    def _replay_one(self, entry: Entry, report: DrainReport) -> ReplayOutcome:
        report.sent += 1
        try:
            response = self.client.send_stored(
                Operation(entry.op), entry.path, entry.payload(), entry.describe()
            )
        except errors.BusinessError as exc:
            result = exc.response.model_dump(mode="json", by_alias=True, exclude_none=True)
            if exc.code == ErrorCode.NOT_UNIQUE_OPERATION_ID or exc.code in _SETTLED.get(
                Operation(entry.op), frozenset()
            ):
                self.journal.finish(entry.seq, EntryStatus.DONE, result, error=exc.code)
                report.done += 1
                return ReplayOutcome.DONE
            if exc.retryable:
                self.journal.failed_attempt(entry.seq, str(exc))
                report.stopped = str(exc)
                return ReplayOutcome.STOPPED
            self.journal.finish(entry.seq, EntryStatus.REJECTED, result, error=f"{exc.code}: {exc}")
            log.error("journal entry %s rejected by processing: %s", entry.seq, exc.code)
            report.rejected.append(entry)
            return ReplayOutcome.REJECTED
        except errors.LoyaltyError as exc:
            self.journal.failed_attempt(entry.seq, str(exc))
            report.stopped = str(exc)
            if exc.offline:
                self._went_offline(exc)
            else:
                log.error("journal entry %s not sent: %s", entry.seq, exc)
            return ReplayOutcome.STOPPED
        self.journal.finish(
            entry.seq,
            EntryStatus.DONE,
            response.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        report.done += 1
        return ReplayOutcome.DONE

    def probe(self) -> bool:
        """Is processing reachable? The first pending entry is the probe when there is one."""
        if self.journal.first_pending_seq() is not None:
            report = self.drain(wait=False)
            return report.busy or report.stopped is None or self._state is not Connectivity.OFFLINE
        try:
            self.client.probe()
        except errors.LoyaltyError as exc:
            self._went_offline(exc)
            return False
        self._online_if_caught_up()  # else a step journaled meanwhile: recover sends it
        return True

    def recover(self) -> DrainReport | None:
        """One recovery attempt: probe, then send the backlog."""
        if not self.probe():
            return None
        self._set_state(Connectivity.RECOVERING, only_from=Connectivity.OFFLINE)
        return self.drain(wait=False)

    # ------------------------------------------------------------------ background

    def start(self) -> None:
        """Probe and replay in a background thread while offline or backlogged."""
        self.prune(force=True)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="posbridge-replay", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        progressed = False
        while not self._stop.is_set():
            if self._state is Connectivity.ONLINE:
                self._wake.wait()
                self._wake.clear()
                progressed = True  # a fresh failure is retried at once, then backs off
                continue
            if not progressed:
                self._wake.wait(jittered(self.backoff.next(), self.backoff.maximum))
                self._wake.clear()
                if self._stop.is_set():
                    return
            try:
                report = self.recover()
            except Exception:  # keep the loop alive; the error is in the log
                log.exception("offline recovery failed")
                report = None
            progressed = report is not None and report.done > 0 and report.stopped is None

    def kick(self) -> None:
        """Try to recover now (e.g. the network came back, or a technician asked)."""
        self.backoff.reset()
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the replayer; a stopping service cuts its request short first
        (`LoyaltyClient.stop_sending`) and gives up waiting after `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
