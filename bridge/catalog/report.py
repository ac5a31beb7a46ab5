"""What `catalog push` and `catalog status` found and did, as typed objects.

The policy (`bridge.catalog.policy`) fills these; the command prints them, as text or as
one JSON object.  `to_json` is the JSON contract of the command (scripts read it): the
keys and their order are the ones the command has always printed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.catalog.push import PendingItem, Plan, UploadReport
from bridge.catalog.state import Rejection
from bridge.loyalty import errors


class PushOutcome(enum.Enum):
    """How a push ended, for the caller's exit code."""

    DONE = "done"  # everything valid is at processing (or, dry run: nothing is wrong)
    PARTIAL = "partial"  # some items rejected, unconfirmed, or invalid rows skipped
    INVALID_ROWS = "invalid_rows"  # invalid rows and no --skip-invalid: nothing was sent
    LOGIN_FAILED = "login_failed"  # processing refused our credentials: the config is wrong
    UNREACHABLE = "unreachable"  # processing unreachable or misbehaving: run again


def plan_json(plan: Plan, deleted_ids: list[str]) -> dict[str, Any]:
    return {
        "valid": plan.valid,
        "invalid": plan.invalid,
        "new": plan.new,
        "changed": plan.changed,
        "unchanged": plan.unchanged,
        "deleted": plan.deleted,
        "deletedIds": deleted_ids,
        "toSend": plan.to_send,
        "chunks": plan.chunks,
        "replace": plan.replace,
        "resumingFull": plan.resuming_full,
    }


@dataclass
class PushReport:
    """One push (or dry run) of one file.

    `pending()` reads the staged catalogue, so it works only inside the `with` block of
    `policy.push` (a dry run of 100,000 items is streamed, not held in memory).
    """

    file: str
    state_path: Path
    dry_run: bool
    invalid: int  # invalid rows of the file
    problems: int  # problems found in them (a row may have several)
    plan: Plan | None = None  # None when invalid rows stopped the push before planning
    deleted_ids: list[str] = field(default_factory=list)  # the first few, for the reader
    upload: UploadReport | None = None  # None for a dry run or a push that sent nothing
    # the staged items to send, read while the push's state is open
    read_pending: Callable[[], Iterator[PendingItem]] | None = field(default=None, repr=False)

    @property
    def outcome(self) -> PushOutcome:
        if self.plan is None:
            return PushOutcome.INVALID_ROWS
        upload = self.upload
        if upload is not None and upload.error is not None:
            if isinstance(upload.error, errors.AuthenticationFailed):
                return PushOutcome.LOGIN_FAILED
            return PushOutcome.UNREACHABLE
        if upload is not None and (upload.refused or upload.rejected or upload.unconfirmed):
            return PushOutcome.PARTIAL
        return PushOutcome.PARTIAL if self.invalid else PushOutcome.DONE

    def pending(self) -> Iterator[PendingItem]:
        """The items the push sends (or would send), in file order."""
        if self.read_pending is None:
            return iter(())
        return self.read_pending()

    def to_json(self) -> dict[str, Any]:
        if self.plan is None:
            raise ValueError("a push stopped by invalid rows has no JSON report")
        data = plan_json(self.plan, self.deleted_ids)
        if self.dry_run:
            data["items"] = [
                {
                    "kind": p.kind,
                    "row": p.row,
                    **p.item.model_dump(by_alias=True, exclude_none=True),
                }
                for p in self.pending()
            ]
            data["dryRun"] = True
            return data
        if self.upload is None:
            raise ValueError("a push that sent nothing has no upload to report")
        report = self.upload
        data.update(
            {
                "sent": report.sent,
                "accepted": report.accepted,
                "rejected": report.rejected,
                "rejections": [
                    {"goodsId": r.goods_id, "row": r.row, "error": r.error}
                    for r in report.rejections
                ],
                "unconfirmed": report.unconfirmed,
                "chunksDone": report.chunks_done,
                "complete": report.complete,
                "refused": report.refused,
                "error": None if report.error is None else str(report.error),
            }
        )
        return data


@dataclass(frozen=True)
class PendingChanges:
    """What a push of a file would send now (`catalog status FILE`)."""

    file: str
    plan: Plan
    deleted_ids: list[str]


@dataclass(frozen=True)
class StatusReport:
    state_path: Path
    exists: bool  # False: no push has written the state file yet
    processing: str | None  # the processing (url and login) the record is about
    for_this_processing: bool  # False: the record is about another processing
    last_push_completed: str | None
    last_push_started: str | None
    incomplete: bool  # the last push stopped before it sent everything
    last_full_push: str | None
    full_push_in_progress: bool  # a full push stopped after its replace chunk
    items_known: int
    rejected_last_time: int
    rejections: list[Rejection]  # the first few
    pending: PendingChanges | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stateFile": str(self.state_path),
            "exists": self.exists,
            "processing": self.processing,
            "forThisProcessing": self.for_this_processing,
            "lastPushCompleted": self.last_push_completed,
            "lastPushStarted": self.last_push_started,
            "incomplete": self.incomplete,
            "lastFullPush": self.last_full_push,
            "fullPushInProgress": self.full_push_in_progress,
            "itemsKnown": self.items_known,
            "rejectedLastTime": self.rejected_last_time,
            "rejections": [{"goodsId": r.goods_id, "error": r.error} for r in self.rejections],
        }
        if self.pending is not None:
            data["pending"] = plan_json(self.pending.plan, self.pending.deleted_ids)
        return data
