"""Inspect and drain the offline journal: requests saved while processing was unreachable.

`replay` sends pending entries in their original order; if the service is replaying at
the same moment, this waits for it (one replayer per register), so no entry is ever
sent twice or in parallel.

A damaged journal is moved aside by the service at start (never deleted) and raises an
alarm: `check` tells whether a file is sound, `salvage FILE` brings every readable
pending entry of a moved-aside file back into the live journal, and `acknowledge`
clears the alarm once a technician has dealt with it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bridge.catalog.progress import Progress
from bridge.commands import UsageError

if TYPE_CHECKING:
    from bridge.loyalty.journal import Entry, Journal
    from bridge.loyalty.offline import OfflineClient, ReplayOutcome

# The journal's EntryStatus values, spelled out: importing the journal (SQLite, the protocol
# models) to build `--help` would cost every command's cold start; a test checks they agree.
STATUSES = ("pending", "done", "rejected")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = sub.add_parser("status", help="counts by status, oldest pending age, connectivity")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    ls = sub.add_parser("list", help="list entries (card numbers masked)")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    sub.add_parser("replay", help="send pending entries now, in order, with progress")
    ex = sub.add_parser("export", help="write entries as JSON lines (mode 0600; - for stdout)")
    ex.add_argument("file", metavar="FILE", help="a new or regular file (never a symlink), or -")
    ex.add_argument("--status", choices=STATUSES)
    ex.add_argument("--unmasked", action="store_true", help="keep full card numbers")
    rt = sub.add_parser("retry", help="put a rejected entry back in line")
    rt.add_argument("seq", metavar="ID", type=int, help="entry number from `journal list`")
    ck = sub.add_parser("check", help="integrity check (exit 0 sound, 1 damaged)")
    ck.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="a journal file to check (default: the configured journal)",
    )
    sv = sub.add_parser(
        "salvage", help="recover the readable pending entries of a damaged journal file"
    )
    sv.add_argument("file", metavar="FILE", help="the moved-aside file, journal.sqlite.damaged-*")
    sub.add_parser("acknowledge", help="clear the damaged-journal alarm (status and doctor)")


def run(args: argparse.Namespace) -> int:
    # lazy, here and in the helpers below ("see run"): the config, the journal, the client
    # and the protocol pull in pydantic, httpx and SQLite; the CLI imports this module for
    # its parser, and the other commands' cold start skips them
    from bridge import config

    cfg = config.load(args.config)
    action = args.action
    if action == "check":
        return _check(cfg.journal.path, args.file)
    if action == "acknowledge":
        return _acknowledge(cfg.journal.path)
    from bridge.loyalty.journal import Journal  # lazy: see above

    if action in ("status", "replay"):
        from bridge.runtime import offline_client  # lazy: see above

        # a technician's look never moves a damaged journal aside under a running service
        Journal(cfg.journal.path, repair=False).close()
        oc = offline_client(cfg)
        try:
            return _status(oc, args.json) if action == "status" else _replay(oc)
        finally:
            oc.client.close()
            oc.journal.close()
    journal = Journal(cfg.journal.path, repair=action == "salvage")
    try:
        if action == "salvage":
            return _salvage(journal, args.file)
        if action == "list":
            return _list(journal, args.status, args.json)
        if action == "export":
            return _export(journal, args.file, args.status, args.unmasked)
        entry = journal.retry(args.seq)
        print(f"entry {entry.seq} ({entry.op}) is pending again; it goes out on the next replay")
        return 0
    finally:
        journal.close()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _status(oc: OfflineClient, as_json: bool) -> int:
    # lazy: see run
    from bridge.commands._output import print_json
    from bridge.loyalty import errors

    counts = oc.journal.counts()
    try:
        oc.client.probe()
        reachable = "online"
    except errors.LoyaltyError as exc:
        reachable = f"offline ({exc})"
    age = counts.oldest_pending_age()
    if as_json:
        print_json(
            {
                "pending": counts.pending,
                "done": counts.done,
                "rejected": counts.rejected,
                "oldestPendingSeconds": None if age is None else round(age),
                "processing": reachable.split(" ")[0],
                "journal": str(oc.journal.path),
            }
        )
        return 0
    print(f"journal      {oc.journal.path}")
    print(f"pending      {counts.pending} (oldest {_age(age)})")
    print(
        f"rejected     {counts.rejected}"
        + ("  -> see `journal list --status rejected`" if counts.rejected else "")
    )
    print(f"done         {counts.done}")
    print(f"processing   {reachable}")
    return 0


def _list(journal: Journal, status: str | None, as_json: bool) -> int:
    # lazy: see run
    from bridge.commands._output import print_json
    from bridge.loyalty.protocol import mask_card

    for e in journal.entries(status):
        if as_json:
            print_json(e.export())
            continue
        card = e.card()
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at))
        print(
            f"{e.seq:>6}  {e.status:<8} {e.op:<16} {when}  purchase {e.purchase_id or '-'}"
            f"  card {mask_card(card) if card else '-'}  attempts {e.attempts}"
            + (f"  last error: {e.last_error}" if e.last_error else "")
        )
    return 0


def _replay(oc: OfflineClient) -> int:
    total = oc.journal.counts().pending
    if total == 0:
        print("nothing to replay")
        return 0
    bar = Progress(total, sys.stderr, label="journal replay")

    def step(entry: Entry, outcome: ReplayOutcome) -> None:
        bar.advance(1)

    report = oc.drain(wait=True, progress=step)
    bar.finish()
    print(f"sent {report.sent}: {report.done} done, {len(report.rejected)} rejected")
    for entry in report.rejected:
        print(f"  rejected: entry {entry.seq} {entry.op} purchase {entry.purchase_id}")
    if report.stopped:
        print(f"stopped: {report.stopped}", file=sys.stderr)
        return 3
    return 1 if report.rejected else 0


def _export(journal: Journal, path: str, status: str | None, unmasked: bool) -> int:
    from bridge.loyalty.protocol import dumps  # lazy: see run

    def write(out: IO[str]) -> int:
        n = 0
        for e in journal.entries(status):
            out.write(dumps(e.export(unmasked=unmasked)).decode("utf-8") + "\n")
            n += 1
        return n

    note = " (card numbers NOT masked)" if unmasked else ""
    if path == "-":  # the summary goes to stderr: stdout is the export itself
        n = write(sys.stdout)
        sys.stdout.flush()
        print(f"{n} entries written to stdout{note}", file=sys.stderr)
        return 0
    n = _write_atomically(Path(path), write)
    print(f"{n} entries written to {path}{note}")
    return 0


def _write_atomically(target: Path, write: Callable[[IO[str]], int]) -> int:
    """A 0600 temp file in the target's directory, renamed over it once complete: a
    reader never sees half an export, and a symlink is refused, never followed."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{target} is a symbolic link; export to a real path") from None
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    else:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError(f"{target} is not a regular file; export to a new file")
        finally:
            os.close(fd)
    directory = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write in {directory}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            n = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)  # replaces a symlink planted meanwhile, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return n


def _check(journal_path: Path, file: str | None) -> int:
    # lazy: see run
    from bridge.loyalty.journal import Journal, JournalDamaged, JournalError, check_file, read_alarm

    target = Path(file) if file else journal_path
    try:
        if file:  # a moved-aside file: checked on a private copy, left exactly as it is
            problem = check_file(target)
        elif not target.is_file():
            raise JournalError("no such file (it is created at the service's first start)")
        else:  # the live one: through SQLite, consistent while the service writes
            try:
                Journal(target, repair=False).close()
                problem = None
            except JournalDamaged as exc:
                problem = exc.problem
    except JournalError as exc:
        print(f"journal {target}: {exc}", file=sys.stderr)
        return 2
    alarm = read_alarm(journal_path)
    if problem is None:
        print(f"journal {target}: ok")
        if alarm and not file:
            print(
                f"alarm: a damaged journal was moved to {alarm.get('movedTo')} on"
                f" {alarm.get('at')}: `posbridge journal salvage {alarm.get('movedTo')}`,"
                " then `posbridge journal acknowledge`",
                file=sys.stderr,
            )
        return 0
    fix = (
        f"`posbridge journal salvage {target}`"
        if file
        else "restart the service: it moves the file aside and starts a fresh journal; then"
        " `posbridge journal salvage` the moved file"
    )
    print(f"journal {target} is damaged ({problem}); {fix}")
    return 1


def _salvage(journal: Journal, file: str) -> int:
    from bridge.loyalty.journal import salvage  # lazy: see run

    report = salvage(journal, file)
    print(
        f"salvaged {file}: {report.recovered} recovered, {report.present} already present,"
        f" {report.unreadable} unreadable, {report.not_pending} already sent or rejected"
        f" (entries 1-{report.highest})"
    )
    if report.recovered:
        print(
            "they go out in their original order at the next replay"
            " (`posbridge journal replay`, or the service by itself)"
        )
    return 0


def _acknowledge(journal_path: Path) -> int:
    from bridge.loyalty.journal import acknowledge_alarm  # lazy: see run

    events = acknowledge_alarm(journal_path)
    if not events:
        print("no journal alarm to acknowledge")
        return 0
    for event in events:
        print(
            f"acknowledged: {event.get('at', '?')} {event.get('problem', '?')}; the damaged"
            f" file stays at {event.get('movedTo', '?')}"
        )
    return 0
