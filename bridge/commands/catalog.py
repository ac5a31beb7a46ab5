"""Push the shop's nomenclature to processing (`catalog push FILE`) or see where it stands.

FILE is CSV (header: goodsId,barcode,name,group,price; `,` `;` or tab), a JSON array
of such objects, or JSON lines.  Every row is checked first; only items changed since
the last push are sent, in chunks of 1,000; an interrupted push continues where it
stopped when run again.  Exit codes: 0 ok, 1 some items rejected by processing (or
invalid rows skipped), 2 usage, config or file errors, 3 processing unreachable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.catalog.push import Catalogue, Plan, UploadReport
    from bridge.catalog.state import CatalogState
    from bridge.catalog.validate import RowError
    from bridge.config import Config

STATE_NAME = "catalog-state.sqlite"
ERRORS_SHOWN = 100
IDS_SHOWN = 20


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = sub.add_parser(
        "push",
        help="send new and changed items of FILE to processing",
        description=(
            "Validate FILE, work out what changed since the last successful push and send"
            " only that, in chunks of 1,000 items.  Run again after an interruption to send"
            " the rest."
        ),
    )
    push.add_argument("file", metavar="FILE", help="catalogue: .csv, .json or .jsonl")
    push.add_argument(
        "--full",
        action="store_true",
        help="replace processing's whole catalogue with FILE (removes items not in it)",
    )
    push.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send nothing"
    )
    push.add_argument(
        "--skip-invalid",
        action="store_true",
        help="push the valid rows even if some rows are invalid (exit code 1)",
    )
    push.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="progress on stderr: a bar on a terminal, lines otherwise (default auto)",
    )
    _common(push)
    status = sub.add_parser(
        "status",
        help="last push, items known to processing, pending changes of FILE",
        description="Show the catalogue state; with FILE, also what a push of FILE would send.",
    )
    status.add_argument("file", metavar="FILE", nargs="?", help="catalogue to compare")
    _common(status)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="FILE",
        help=f"catalogue state file (default: {STATE_NAME} next to the journal)",
    )
    parser.add_argument(
        "--format", choices=["csv", "json", "jsonl"], help="file format (default: by extension)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import sqlite3

    from bridge.commands import UsageError

    try:
        if args.action == "status":
            return _status(args)
        return _push(args)
    except sqlite3.Error as exc:  # the state file or the temporary staging area
        raise UsageError(f"catalogue state: {exc} (state file: see --state)") from None


# ---------------------------------------------------------------------- helpers


def _target(cfg: Config) -> str:
    return f"{cfg.processing.url} login {cfg.processing.login}"


def _state_path(args: argparse.Namespace, cfg: Config | None) -> Path:
    if args.state:
        return Path(args.state)
    assert cfg is not None
    return cfg.journal.path.parent / STATE_NAME


class _Errors:
    """Row errors go to stderr as found; after ERRORS_SHOWN only the count grows."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0

    def __call__(self, err: RowError) -> None:
        self.count += 1
        if self.count <= ERRORS_SHOWN:
            self.stream.write(f"{err}\n")

    def close(self) -> None:
        if self.count > ERRORS_SHOWN:
            self.stream.write(f"... and {self.count - ERRORS_SHOWN} more problems\n")
        self.stream.flush()


def _load(state: CatalogState, args: argparse.Namespace) -> tuple[Catalogue, _Errors]:
    from bridge.catalog.push import Catalogue
    from bridge.catalog.source import SourceError, read_rows
    from bridge.commands import UsageError

    catalogue = Catalogue(state)
    errors = _Errors(sys.stderr)
    try:
        catalogue.load(read_rows(args.file, args.format), errors)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    finally:
        errors.close()
    return catalogue, errors


def _open_state(path: Path, readonly: bool) -> CatalogState:
    from bridge.catalog.state import CatalogState, StateError
    from bridge.commands import UsageError

    try:
        return CatalogState.open_readonly(path) if readonly else CatalogState.open(path)
    except StateError as exc:
        raise UsageError(str(exc)) from None


def _lock(path: Path) -> IO[bytes]:
    """One push per state file at a time; held until the process ends."""
    import fcntl
    import os

    from bridge.commands import UsageError

    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        handle = os.fdopen(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "rb+")
    except OSError as exc:
        raise UsageError(f"cannot create lock {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"another catalog push is running (lock {lock_path})") from None
    return handle


# ---------------------------------------------------------------------- push


def _push(args: argparse.Namespace) -> int:
    from bridge import config
    from bridge.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE
    from bridge.commands import UsageError

    cfg: Config | None = None
    if not (args.dry_run and args.state):
        cfg = config.load(args.config)
    state_path = _state_path(args, cfg)
    lock = None if args.dry_run else _lock(state_path)
    try:
        with _open_state(state_path, readonly=args.dry_run) as state:
            # the record is about another processing: it says nothing about this one (it is
            # dropped only when this push starts sending, not by a run that stops earlier)
            ignore_pushed = cfg is not None and not state.target_matches(_target(cfg))
            if ignore_pushed:
                print(
                    f"note: {state_path} recorded pushes to another processing;"
                    " every item is treated as new",
                    file=sys.stderr,
                )
            catalogue, errors = _load(state, args)
            if catalogue.invalid and not args.skip_invalid:
                print(
                    f"{args.file}: {catalogue.invalid} invalid row(s) ({errors.count} problem(s));"
                    " nothing was sent.  Fix them, or use --skip-invalid to push the valid rows.",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            if args.full and catalogue.valid == 0:
                raise UsageError(
                    f"{args.file} has no valid items; --full would empty processing's catalogue"
                )
            plan = catalogue.plan(full=args.full, ignore_pushed=ignore_pushed)
            if plan.replace and catalogue.invalid:
                print(
                    f"warning: --full with --skip-invalid: the {catalogue.invalid} invalid row(s)"
                    " are removed from processing's catalogue if they were there",
                    file=sys.stderr,
                )
            deleted = [] if ignore_pushed else catalogue.deleted_ids(IDS_SHOWN)
            if args.dry_run:
                _show_dry_run(args, catalogue, plan, deleted)
                return EXIT_REFUSED if catalogue.invalid else EXIT_OK
            assert cfg is not None
            state.adopt_target(_target(cfg))
            report = _upload(args, cfg, catalogue, plan)
            _show_push(args, plan, deleted, report)
            return _push_exit(report, catalogue.invalid)
    finally:
        if lock is not None:
            lock.close()


def _upload(
    args: argparse.Namespace, cfg: Config, catalogue: Catalogue, plan: Plan
) -> UploadReport:
    from bridge.catalog.progress import Progress
    from bridge.loyalty.client import LoyaltyClient

    progress = Progress(plan.to_send, sys.stderr, args.progress)
    with LoyaltyClient.from_settings(cfg.processing) as client:
        try:
            return catalogue.upload(client, progress)
        finally:
            progress.finish()


def _push_exit(report: UploadReport, invalid: int) -> int:
    from bridge.cli import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
    from bridge.loyalty import errors

    if report.error is not None:
        if isinstance(report.error, errors.AuthenticationFailed):
            return EXIT_USAGE
        return EXIT_UNREACHABLE
    if report.refused or report.rejected or report.unconfirmed or invalid:
        return EXIT_REFUSED
    return EXIT_OK


def _plan_data(plan: Plan, deleted: list[str]) -> dict[str, Any]:
    return {
        "valid": plan.valid,
        "invalid": plan.invalid,
        "new": plan.new,
        "changed": plan.changed,
        "unchanged": plan.unchanged,
        "deleted": plan.deleted,
        "deletedIds": deleted,
        "toSend": plan.to_send,
        "chunks": plan.chunks,
        "replace": plan.replace,
        "resumingFull": plan.resuming_full,
    }


def _plan_lines(plan: Plan, deleted: list[str]) -> list[str]:
    lines = [
        f"rows: {plan.valid:,} valid, {plan.invalid:,} invalid",
        f"changes since the last push: {plan.new:,} new, {plan.changed:,} changed,"
        f" {plan.unchanged:,} unchanged",
    ]
    if plan.replace:
        lines.append("full push: processing's catalogue is replaced by this file")
    if plan.resuming_full:
        lines.append("continuing an interrupted full push (the catalogue was already replaced)")
    if plan.deleted:
        more = f" and {plan.deleted - len(deleted):,} more" if plan.deleted > len(deleted) else ""
        fate = (
            "this full push removes them"
            if plan.replace
            else "processing keeps them (the contract has no delete); `--full` removes them"
        )
        lines.append(
            f"{plan.deleted:,} item(s) pushed before are no longer in the file ({fate}):"
            f" {', '.join(deleted)}{more}"
        )
    lines.append(f"to send: {plan.to_send:,} item(s) in {plan.chunks:,} chunk(s)")
    return lines


def _show_dry_run(
    args: argparse.Namespace, catalogue: Catalogue, plan: Plan, deleted: list[str]
) -> None:
    from bridge.commands._output import print_json

    if args.json:
        data = _plan_data(plan, deleted)
        data["items"] = [
            {"kind": p.kind, "row": p.row, **p.item.model_dump(by_alias=True, exclude_none=True)}
            for p in catalogue.pending()
        ]
        data["dryRun"] = True
        print_json(data)
        return
    for line in _plan_lines(plan, deleted):
        print(line)
    mark = {"new": "+", "changed": "~", "same": "="}
    for p in catalogue.pending():
        it = p.item
        price = "-" if it.price is None else f"{it.price:.2f}"
        print(
            f"{mark.get(p.kind, '?')} {it.goods_id}  {it.name}  price {price}"
            f"  barcode {it.barcode or '-'}  group {it.group or '-'}  (row {p.row})"
        )
    print("dry run: nothing was sent")


def _show_push(
    args: argparse.Namespace, plan: Plan, deleted: list[str], report: UploadReport
) -> None:
    from bridge.commands._output import print_json

    rejections = [
        {"goodsId": r.goods_id, "row": r.row, "error": r.error} for r in report.rejections
    ]
    if args.json:
        data = _plan_data(plan, deleted)
        data.update(
            {
                "sent": report.sent,
                "accepted": report.accepted,
                "rejected": report.rejected,
                "rejections": rejections,
                "unconfirmed": report.unconfirmed,
                "chunksDone": report.chunks_done,
                "complete": report.complete,
                "refused": report.refused,
                "error": None if report.error is None else str(report.error),
            }
        )
        print_json(data)
    else:
        for line in _plan_lines(plan, deleted):
            print(line)
        if plan.to_send == 0:
            print("nothing to send: processing has every valid item of the file as it is")
        else:
            print(
                f"sent {report.sent:,} item(s) in {report.chunks_done:,} of"
                f" {report.chunks_total:,} chunk(s): {report.accepted:,} accepted,"
                f" {report.rejected:,} rejected"
            )
        for r in report.rejections:
            who = f"{r.goods_id} (row {r.row})" if r.goods_id is not None else "(unnamed)"
            print(f"rejected {who}: {r.error}")
        if report.rejected > len([r for r in report.rejections if r.goods_id is not None]):
            print("... more rejections: see `posbridge catalog status`")
        if report.rejected:
            print("rejected items are not recorded as pushed; they are sent again next time")
        if report.unconfirmed:
            print(f"{report.unconfirmed:,} item(s) unconfirmed by processing; sent again next time")
    if report.refused:
        print(f"processing refused the upload: {report.refused}", file=sys.stderr)
    if report.error is not None:
        left = plan.to_send - report.sent
        print(
            f"posbridge catalog push: {report.error}\n"
            f"{report.accepted:,} item(s) accepted and recorded; {left:,} not sent yet."
            " Run the same command again to send the rest.",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------- status


def _status(args: argparse.Namespace) -> int:
    from bridge import config
    from bridge.catalog import state as st
    from bridge.cli import EXIT_OK
    from bridge.commands._output import print_json

    cfg: Config | None = None if args.state else config.load(args.config)
    path = _state_path(args, cfg)
    with _open_state(path, readonly=True) as state:
        target = state.get(st.TARGET)
        mismatch = cfg is not None and not state.target_matches(_target(cfg))
        started, completed = state.get(st.LAST_STARTED), state.get(st.LAST_COMPLETED)
        data: dict[str, Any] = {
            "stateFile": str(path),
            "exists": state.path is not None,
            "processing": target,
            "forThisProcessing": not mismatch,
            "lastPushCompleted": completed,
            "lastPushStarted": started,
            "incomplete": state.get(st.INCOMPLETE) is not None,
            "lastFullPush": state.get(st.LAST_FULL),
            "fullPushInProgress": state.get(st.FULL_IN_PROGRESS) is not None,
            "itemsKnown": state.known_count(),
            "rejectedLastTime": state.rejected_count(),
            "rejections": [
                {"goodsId": r.goods_id, "error": r.error} for r in state.rejections(IDS_SHOWN)
            ],
        }
        plan = None
        if args.file:
            catalogue, _ = _load(state, args)
            plan = catalogue.plan(full=False, ignore_pushed=mismatch)
            data["pending"] = _plan_data(plan, catalogue.deleted_ids(IDS_SHOWN))
    if args.json:
        print_json(data)
        return EXIT_OK
    rows = [
        ("state file", f"{path}" + ("" if data["exists"] else " (no push yet)")),
        ("processing", (target or "-") + (" (NOT the configured one)" if mismatch else "")),
        ("last push completed", completed or "never"),
    ]
    if data["incomplete"]:
        rows.append(("last push started", f"{started} (incomplete: run push again)"))
    rows += [
        ("last full push", data["lastFullPush"] or "never"),
        ("items known", f"{data['itemsKnown']:,}"),
        ("rejected last time", f"{data['rejectedLastTime']:,}"),
    ]
    if data["fullPushInProgress"]:
        rows.append(("full push", "interrupted after the replace; push --full again to finish"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for r in data["rejections"]:
        print(f"  rejected {r['goodsId']}: {r['error']}")
    if plan is not None:
        print(f"pending for {args.file}:")
        for line in _plan_lines(plan, data["pending"]["deletedIds"]):
            print(f"  {line}")
    return EXIT_OK
