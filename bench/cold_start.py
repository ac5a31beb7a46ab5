"""`posbridge --version` cold start vs a bare `python -c pass`, same run. Target <= 0.3 s."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], n: int = 15) -> float:
    runs = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    exe = shutil.which("posbridge") or str(Path(sys.executable).parent / "posbridge")
    ours = timed([exe, "--version"])
    base = timed([sys.executable, "-c", "pass"])
    print(f"posbridge --version: median {ours * 1e3:.1f} ms (target <= 300 ms)")
    print(f"python -c pass     : median {base * 1e3:.1f} ms")
    print(f"ratio {ours / base:.2f}")


if __name__ == "__main__":
    main()
