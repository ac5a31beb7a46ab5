"""The crash test at scale: hundreds of SIGKILLs while the register journals and replays.

Half the kills land while the register sells offline into its journal (processing
down), half while it replays the journal (processing up).  At the end processing must
hold exactly what the same shift sold online leaves (every ledger, every purchase), and
its duplicate count must equal the resends of steps whose done-mark a kill lost.

    .venv/bin/python bench/chaos.py                 # 300 kills
    .venv/bin/python bench/chaos.py --kills 60 --seed 5
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.server import SandboxServer
from tests.loyalty.crash_child import crash_campaign, final_state, online_reference


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=300, help="SIGKILLs in all (default %(default)s)")
    ap.add_argument(
        "--purchases", type=int, help="purchases in the shift (default: as many as kills)"
    )
    ap.add_argument("--seed", type=int, default=1, help="shift and kill-point seed")
    args = ap.parse_args()
    if args.kills < 2:
        ap.error("--kills must be at least 2")
    n = args.purchases or args.kills
    with tempfile.TemporaryDirectory(prefix="posbridge-chaos-") as d:
        tmp = Path(d)
        with SandboxServer(tmp / "processing.db") as server:
            try:
                out = crash_campaign(
                    server,
                    tmp,
                    seed=args.seed,
                    n=n,
                    sell_kills=args.kills // 2,
                    drain_kills=args.kills - args.kills // 2,
                    rng=random.Random(args.seed),
                )
            except AssertionError as exc:
                print(f"FAIL: {exc}")
                return 1
            start = time.monotonic()
            same = final_state(server, args.seed, n) == online_reference(tmp, args.seed, n)
            compare = time.monotonic() - start
    ok = same and out.overlaps == 0 and out.duplicates == out.resends_expected
    print(f"chaos: {n} purchases, {out.entries} journal entries, seed {args.seed}")
    print(
        f"  kills          : {out.kills} ({out.sell_kills} while journaling offline, "
        f"{out.drain_kills} while replaying) in {out.seconds:.1f} s"
    )
    print(f"  lost done-marks: {out.resends_expected} (steps applied by processing, then resent)")
    print(f"  duplicates     : {out.duplicates} seen by processing (must equal lost done-marks)")
    print(
        f"  cut requests   : {out.truncated} (killed mid-write; processing answered 400, applied nothing)"
    )
    print(f"  overlaps       : {out.overlaps}")
    print(
        f"  final ledger   : {'equal to' if same else 'DIFFERENT FROM'} the shift sold online "
        f"({compare:.1f} s to compare)"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
