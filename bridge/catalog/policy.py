"""What a catalogue push may do, and when it must stop; and what `status` looks at.

One push per state file at a time (a lock beside it).  The record belongs to one
processing: pointed at another, every item is new, and the old record is dropped only
when this push starts sending.  Invalid rows stop the push unless the caller agreed to
skip them; a full push never empties processing's catalogue for want of valid rows.
What happens along the way (row errors, notes, progress) goes to `PushEvents` as it
happens; what came of it is the returned report, which the command prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge.catalog import STATE_NAME
from bridge.catalog import state as st
from bridge.catalog.push import Catalogue, Plan, UploadReport
from bridge.catalog.report import PendingChanges, PushReport, StatusReport
from bridge.catalog.source import Format, read_rows
from bridge.catalog.state import CatalogState
from bridge.catalog.validate import RowError
from bridge.config import ProcessingSettings
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.sequencer import LockFileError, RegisterLock

IDS_SHOWN = 20  # goodsIds of deleted items and rejections a report lists


class CatalogError(Exception):
    """The push cannot go ahead as asked; the message says why and what to do."""


class PushEvents:
    """Told what happens during a push, as it happens; every method does nothing here."""

    def other_processing(self, state_path: Path) -> None:
        """The state file recorded pushes to another processing: every item is new."""

    def row_error(self, error: RowError) -> None:
        """A problem with one row, as it is found (a row may have several)."""

    def rows_checked(self, problems: int) -> None:
        """Every row is read (also when reading stopped at an unreadable file)."""

    def invalid_rows_removed(self, invalid: int) -> None:
        """A full push with invalid rows skipped: processing drops their items, if it had them."""

    def upload_started(self, total: int) -> Callable[[int], None]:
        """`total` items are about to be sent; the callable is told each chunk's size."""
        return lambda n: None

    def upload_ended(self) -> None:
        """Nothing more is sent (done, or stopped)."""


@dataclass(frozen=True)
class PushOptions:
    file: str
    format: Format | None = None
    full: bool = False  # replace processing's whole catalogue with the file
    dry_run: bool = False  # plan only: nothing is sent and the state file is not written
    skip_invalid: bool = False  # push the valid rows although some rows are invalid


def default_state_path(journal_path: Path) -> Path:
    """Next to the journal: the register's own data directory."""
    return journal_path.parent / STATE_NAME


def target(processing: ProcessingSettings) -> str:
    """Whom a record is about: a push record for one processing means nothing to another."""
    return f"{processing.url} login {processing.login}"


@contextlib.contextmanager
def push(
    options: PushOptions,
    state_path: Path,
    processing: ProcessingSettings | None,
    events: PushEvents,
) -> Iterator[PushReport]:
    """Push (or plan) `options.file`; the report is valid inside the `with` block.

    `processing` may be None only for a dry run (then the record's owner is not
    checked).  Raises CatalogError, StateError or SourceError for a push that cannot
    start; a push that starts and fails half-way says so in its report.
    """
    if processing is None and not options.dry_run:
        raise ValueError("a push needs the processing settings; only a dry run goes without")
    lock = None if options.dry_run else _lock(state_path)
    try:
        with _open(state_path, readonly=options.dry_run) as state:
            # the record is about another processing: it says nothing about this one (it is
            # dropped only when this push starts sending, not by a run that stops earlier)
            ignore_pushed = processing is not None and not state.target_matches(target(processing))
            if ignore_pushed:
                events.other_processing(state_path)
            catalogue, problems = _load(state, options.file, options.format, events)
            report = PushReport(
                file=options.file,
                state_path=state_path,
                dry_run=options.dry_run,
                invalid=catalogue.invalid,
                problems=problems,
            )
            if catalogue.invalid and not options.skip_invalid:
                yield report  # nothing planned, nothing sent
                return
            if options.full and catalogue.valid == 0:
                raise CatalogError(
                    f"{options.file} has no valid items; --full would empty processing's catalogue"
                )
            plan = report.plan = catalogue.plan(full=options.full, ignore_pushed=ignore_pushed)
            if plan.replace and catalogue.invalid:
                events.invalid_rows_removed(catalogue.invalid)
            report.deleted_ids = [] if ignore_pushed else catalogue.deleted_ids(IDS_SHOWN)
            if processing is None or options.dry_run:
                report.read_pending = catalogue.pending
                yield report
                return
            state.adopt_target(target(processing))
            report.upload = _upload(catalogue, plan, processing, events)
            yield report
    finally:
        if lock is not None:
            lock.close()


def status(
    state_path: Path,
    processing: ProcessingSettings | None,
    file: str | None,
    fmt: Format | None,
    events: PushEvents,
) -> StatusReport:
    """The record of pushes; with `file`, also what a push of it would send now.

    Nothing is written, and no lock is taken: status may look while a push runs.
    """
    with _open(state_path, readonly=True) as state:
        mismatch = processing is not None and not state.target_matches(target(processing))
        pending = None
        if file:
            catalogue, _ = _load(state, file, fmt, events)
            plan = catalogue.plan(full=False, ignore_pushed=mismatch)
            pending = PendingChanges(file, plan, catalogue.deleted_ids(IDS_SHOWN))
        return StatusReport(
            state_path=state_path,
            exists=state.path is not None,
            processing=state.get(st.TARGET),
            for_this_processing=not mismatch,
            last_push_completed=state.get(st.LAST_COMPLETED),
            last_push_started=state.get(st.LAST_STARTED),
            incomplete=state.get(st.INCOMPLETE) is not None,
            last_full_push=state.get(st.LAST_FULL),
            full_push_in_progress=state.get(st.FULL_IN_PROGRESS) is not None,
            items_known=state.known_count(),
            rejected_last_time=state.rejected_count(),
            rejections=state.rejections(IDS_SHOWN),
            pending=pending,
        )


# ---------------------------------------------------------------------- helpers


def _lock(state_path: Path) -> RegisterLock:
    """One push per state file at a time; held until the push ends (or the process does)."""
    lock_path = state_path.with_name(state_path.name + ".lock")
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise CatalogError(f"cannot create lock {lock_path}: {exc.strerror}") from None
    lock = RegisterLock(lock_path, purpose="catalogue push")
    try:
        taken = lock.acquire(wait=False)
    except LockFileError as exc:
        raise CatalogError(str(exc)) from None
    if not taken:
        lock.close()
        raise CatalogError(f"another catalog push is running (lock {lock_path})")
    return lock


def _open(path: Path, readonly: bool) -> CatalogState:
    return CatalogState.open_readonly(path) if readonly else CatalogState.open(path)


def _load(
    state: CatalogState, file: str, fmt: Format | None, events: PushEvents
) -> tuple[Catalogue, int]:
    """Stage the file against the state; (the catalogue, the number of problems found)."""
    catalogue = Catalogue(state)
    problems = 0

    def found(error: RowError) -> None:
        nonlocal problems
        problems += 1
        events.row_error(error)

    try:
        catalogue.load(read_rows(file, fmt), found)
    finally:
        events.rows_checked(problems)
    return catalogue, problems


def _upload(
    catalogue: Catalogue, plan: Plan, processing: ProcessingSettings, events: PushEvents
) -> UploadReport:
    progress = events.upload_started(plan.to_send)
    with LoyaltyClient.from_settings(processing) as client:
        try:
            return catalogue.upload(client, progress)
        finally:
            events.upload_ended()
