"""`posbridge catalog push` in a process of its own: for kill tests and memory measurement.

Usage: python -m tests.catalog.push_child CONFIG FILE [FILE...]
Pushes each FILE in turn and prints one JSON line per push: its exit code and the
process's peak resident memory so far (ru_maxrss, KiB), so growth between a small
warm-up push and a large one shows what the large one held.
"""

from __future__ import annotations

import json
import resource
import sys


def main(argv: list[str]) -> int:
    from bridge import cli

    cli.COMMANDS.setdefault("catalog", ("bridge.commands.catalog", "catalogue"))
    config, *files = argv
    for path in files:
        rc = cli.main(["--config", config, "catalog", "push", path, "--progress", "lines"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"file": path, "rc": rc, "maxrss_kib": peak}), flush=True)
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
