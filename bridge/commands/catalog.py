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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.catalog import STATE_NAME
from bridge.catalog.progress import Progress
from bridge.commands import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from bridge.catalog.policy import PushEvents
    from bridge.catalog.push import Plan
    from bridge.catalog.report import PushReport, StatusReport
    from bridge.config import Config

ERRORS_SHOWN = 100  # row problems printed; after that only counted


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
    # lazy, here and below: the policy pulls in SQLite, httpx and the protocol models, which
    # every other command's cold start (the CLI imports this module for its parser) skips
    import sqlite3

    from bridge.catalog.policy import CatalogError
    from bridge.catalog.source import SourceError
    from bridge.catalog.state import StateError

    try:
        if args.action == "status":
            return _status(args)
        return _push(args)
    except (CatalogError, SourceError, StateError) as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.Error as exc:  # the state file or the temporary staging area
        raise UsageError(f"catalogue state: {exc} (state file: see --state)") from None


def _state_path(args: argparse.Namespace, cfg: Config | None) -> Path:
    from bridge.catalog.policy import default_state_path  # lazy: see run

    if args.state:
        return Path(args.state)
    if cfg is None:  # the callers load the config whenever --state is not given
        raise ValueError("no --state and no config to place the state file by")
    return default_state_path(cfg.journal.path)


def _events(args: argparse.Namespace) -> PushEvents:
    """Row errors, notes and progress on stderr, as they happen."""
    # lazy: see run
    from bridge.catalog.policy import PushEvents
    from bridge.catalog.validate import RowError

    class Stderr(PushEvents):
        def __init__(self) -> None:
            self.shown = 0
            self.progress: Progress | None = None

        def other_processing(self, state_path: Path) -> None:
            print(
                f"note: {state_path} recorded pushes to another processing;"
                " every item is treated as new",
                file=sys.stderr,
            )

        def row_error(self, error: RowError) -> None:
            self.shown += 1
            if self.shown <= ERRORS_SHOWN:
                sys.stderr.write(f"{error}\n")

        def rows_checked(self, problems: int) -> None:
            if problems > ERRORS_SHOWN:
                sys.stderr.write(f"... and {problems - ERRORS_SHOWN} more problems\n")
            sys.stderr.flush()

        def invalid_rows_removed(self, invalid: int) -> None:
            print(
                f"warning: --full with --skip-invalid: the {invalid} invalid row(s)"
                " are removed from processing's catalogue if they were there",
                file=sys.stderr,
            )

        def upload_started(self, total: int) -> Callable[[int], None]:
            self.progress = Progress(total, sys.stderr, getattr(args, "progress", "auto"))
            return self.progress

        def upload_ended(self) -> None:
            if self.progress is not None:
                self.progress.finish()

    return Stderr()


# ---------------------------------------------------------------------- push


def _push(args: argparse.Namespace) -> int:
    # lazy: see run
    from bridge import config
    from bridge.catalog import policy
    from bridge.catalog.report import PushOutcome
    from bridge.commands._output import print_json

    cfg: Config | None = None
    if not (args.dry_run and args.state):
        cfg = config.load(args.config)
    options = policy.PushOptions(
        file=args.file,
        format=args.format,
        full=args.full,
        dry_run=args.dry_run,
        skip_invalid=args.skip_invalid,
    )
    processing = None if cfg is None else cfg.processing
    with policy.push(options, _state_path(args, cfg), processing, _events(args)) as report:
        outcome = report.outcome
        if outcome is PushOutcome.INVALID_ROWS:
            print(
                f"{report.file}: {report.invalid} invalid row(s) ({report.problems} problem(s));"
                " nothing was sent.  Fix them, or use --skip-invalid to push the valid rows.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if args.json:
            print_json(report.to_json())
        elif report.dry_run:
            _show_dry_run(report)
        else:
            _show_push(report)
        _show_failure(report)
    return {
        PushOutcome.DONE: EXIT_OK,
        PushOutcome.PARTIAL: EXIT_REFUSED,
        PushOutcome.LOGIN_FAILED: EXIT_USAGE,
        PushOutcome.UNREACHABLE: EXIT_UNREACHABLE,
    }[outcome]


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


_MARKS = {"new": "+", "changed": "~", "same": "="}


def _show_dry_run(report: PushReport) -> None:
    if report.plan is None:
        raise ValueError("a dry run stopped by invalid rows has no plan to show")
    for line in _plan_lines(report.plan, report.deleted_ids):
        print(line)
    for p in report.pending():
        it = p.item
        price = "-" if it.price is None else f"{it.price:.2f}"
        print(
            f"{_MARKS.get(p.kind, '?')} {it.goods_id}  {it.name}  price {price}"
            f"  barcode {it.barcode or '-'}  group {it.group or '-'}  (row {p.row})"
        )
    print("dry run: nothing was sent")


def _show_push(report: PushReport) -> None:
    plan, upload = report.plan, report.upload
    if plan is None or upload is None:
        raise ValueError("a push that sent nothing has no upload to show")
    for line in _plan_lines(plan, report.deleted_ids):
        print(line)
    if plan.to_send == 0:
        print("nothing to send: processing has every valid item of the file as it is")
    else:
        print(
            f"sent {upload.sent:,} item(s) in {upload.chunks_done:,} of"
            f" {upload.chunks_total:,} chunk(s): {upload.accepted:,} accepted,"
            f" {upload.rejected:,} rejected"
        )
    for r in upload.rejections:
        who = f"{r.goods_id} (row {r.row})" if r.goods_id is not None else "(unnamed)"
        print(f"rejected {who}: {r.error}")
    if upload.rejected > len([r for r in upload.rejections if r.goods_id is not None]):
        print("... more rejections: see `posbridge catalog status`")
    if upload.rejected:
        print("rejected items are not recorded as pushed; they are sent again next time")
    if upload.unconfirmed:
        print(f"{upload.unconfirmed:,} item(s) unconfirmed by processing; sent again next time")


def _show_failure(report: PushReport) -> None:
    """On stderr, whatever the format: a whole chunk refused, or processing gone."""
    upload = report.upload
    if upload is None or report.plan is None:
        return
    if upload.refused:
        print(f"processing refused the upload: {upload.refused}", file=sys.stderr)
    if upload.error is not None:
        left = report.plan.to_send - upload.sent
        print(
            f"posbridge catalog push: {upload.error}\n"
            f"{upload.accepted:,} item(s) accepted and recorded; {left:,} not sent yet."
            " Run the same command again to send the rest.",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------- status


def _status(args: argparse.Namespace) -> int:
    # lazy: see run
    from bridge import config
    from bridge.catalog import policy
    from bridge.commands._output import print_json

    cfg: Config | None = None if args.state else config.load(args.config)
    processing = None if cfg is None else cfg.processing
    path = _state_path(args, cfg)
    report = policy.status(path, processing, args.file, args.format, _events(args))
    if args.json:
        print_json(report.to_json())
        return EXIT_OK
    _show_status(report)
    return EXIT_OK


def _show_status(report: StatusReport) -> None:
    elsewhere = "" if report.for_this_processing else " (NOT the configured one)"
    rows = [
        ("state file", f"{report.state_path}" + ("" if report.exists else " (no push yet)")),
        ("processing", (report.processing or "-") + elsewhere),
        ("last push completed", report.last_push_completed or "never"),
    ]
    if report.incomplete:
        started = f"{report.last_push_started} (incomplete: run push again)"
        rows.append(("last push started", started))
    rows += [
        ("last full push", report.last_full_push or "never"),
        ("items known", f"{report.items_known:,}"),
        ("rejected last time", f"{report.rejected_last_time:,}"),
    ]
    if report.full_push_in_progress:
        rows.append(("full push", "interrupted after the replace; push --full again to finish"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for r in report.rejections:
        print(f"  rejected {r.goods_id}: {r.error}")
    if report.pending is not None:
        print(f"pending for {report.pending.file}:")
        for line in _plan_lines(report.pending.plan, report.pending.deleted_ids):
            print(f"  {line}")
