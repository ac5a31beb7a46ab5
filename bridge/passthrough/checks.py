"""What `posbridge doctor` says about the `[[passthrough]]` entries.

The doctor runs beside the service, not inside it, so it reads what the service leaves
behind: the symlinks the POS opens, and the figures the session writes after each
receipt (`passthrough-stats.json` beside the journal), unmatched items first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal

from bridge.config import Config, PassthroughSettings
from bridge.passthrough.session import read_stats, stats_path

Verdict = Literal["pass", "warn", "fail", "skip"]
Found = tuple[str, Verdict, str, str | None]


def passthrough_checks(cfg: Config) -> Iterator[Found]:
    for entry in cfg.passthrough:
        yield _port_check(entry)
    if any(p.kind == "registrar" for p in cfg.passthrough):
        yield _matching_check(cfg)


def _port_check(entry: PassthroughSettings) -> Found:
    name = f"pass-through {entry.name}"
    if entry.listen is not None:
        return name, "pass", f"{entry.kind} for the POS on tcp {entry.listen}", None
    link = entry.link_path()
    if link is None:  # not reached: only a TCP entry has none
        return name, "skip", "no pty link", None
    if link.is_symlink():
        target = os.readlink(link)
        if os.path.exists(link):
            return name, "pass", f"{entry.kind} for the POS at {link} -> {target}", None
        return (
            name,
            "warn",
            f"{link} points at {target}, which is gone",
            "the service stopped uncleanly; `systemctl restart posbridge` makes it anew",
        )
    if link.exists():
        return (
            name,
            "fail",
            f"{link} exists and is not a symlink: the service will not replace it",
            f"remove {link} or set another `link` for this pass-through",
        )
    return (
        name,
        "warn",
        f"{link} does not exist: the service is not running, or cannot create it",
        "start posbridge (`systemctl start posbridge`); the unit's RuntimeDirectory makes"
        " /run/posbridge, and `journalctl -u posbridge` says why a pty could not be made",
    )


def _matching_check(cfg: Config) -> Found:
    name = "pass-through items"
    catalog = next((p.catalog for p in cfg.passthrough if p.catalog is not None), None)
    stats = read_stats(stats_path(cfg))
    if catalog is None:
        return (
            name,
            "warn",
            "no catalogue to match fiscal items by: every item goes to processing unmatched",
            "set `catalog` (the file you push with `posbridge catalog push`) on the registrar"
            " pass-through",
        )
    if stats is None:
        return name, "pass", f"matched against {catalog}; no receipt settled yet", None
    error = stats.get("catalogError")
    if error:
        return name, "fail", str(error), "fix the catalogue file, then restart posbridge"
    items, unmatched = int(stats.get("items", 0)), int(stats.get("unmatched", 0))
    if unmatched:
        last = ", ".join(repr(str(n)) for n in stats.get("lastUnmatched", [])[-5:])
        return (
            name,
            "warn",
            f"{unmatched} of {items} item(s) did not match the pushed catalogue"
            f" (latest: {last}); they were sent under made-up ids",
            f"add them to {catalog} with the name (or barcode) the POS sells them under,"
            " then `posbridge catalog push`",
        )
    return name, "pass", f"all {items} item(s) matched the pushed catalogue ({catalog})", None
