"""Inspect and drain the offline journal: requests saved while processing was unreachable.

`replay` sends pending entries in their original order; if the service is replaying at
the same moment, this waits for it (one replayer per register), so no entry is ever
sent twice or in parallel.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.loyalty.journal import Entry, Journal
    from bridge.loyalty.offline import OfflineClient


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = sub.add_parser("status", help="counts by status, oldest pending age, connectivity")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    ls = sub.add_parser("list", help="list entries (card numbers masked)")
    ls.add_argument("--status", choices=["pending", "done", "rejected"])
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    sub.add_parser("replay", help="send pending entries now, in order, with progress")
    ex = sub.add_parser("export", help="write entries as JSON lines (mode 0600)")
    ex.add_argument("file", metavar="FILE")
    ex.add_argument("--status", choices=["pending", "done", "rejected"])
    ex.add_argument("--unmasked", action="store_true", help="keep full card numbers")
    rt = sub.add_parser("retry", help="put a rejected entry back in line")
    rt.add_argument("seq", metavar="ID", type=int, help="entry number from `journal list`")


def run(args: argparse.Namespace) -> int:
    from bridge import config

    cfg = config.load(args.config)
    action = args.action
    if action in ("status", "replay"):
        from bridge.runtime import offline_client

        oc = offline_client(cfg)
        try:
            return _status(oc, args.json) if action == "status" else _replay(oc)
        finally:
            oc.client.close()
            oc.journal.close()
    from bridge.loyalty.journal import Journal

    journal = Journal(cfg.journal.path)
    try:
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
    from bridge.catalog.progress import Progress

    total = oc.journal.counts().pending
    if total == 0:
        print("nothing to replay")
        return 0
    bar = Progress(total, sys.stderr, label="journal replay")

    def step(entry: Entry, outcome: str) -> None:
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
    from bridge.loyalty.protocol import dumps

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    n = 0
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for e in journal.entries(status):
            out.write(dumps(e.export(unmasked=unmasked)).decode("utf-8") + "\n")
            n += 1
    print(f"{n} entries written to {path}" + (" (card numbers NOT masked)" if unmasked else ""))
    return 0
