"""Benchmark: push a generated catalogue (100,000 items by default) to the sandbox.

Runs `posbridge catalog push` in a child process (tests/catalog/push_child.py) against
a sandbox served by this process, first a 2,000-item warm-up file and then the big
one, and reports wall time and the child's peak resident memory before and after the
big push: the growth is what the big push held, which must not scale with the file.
Then it times a second push (nothing changed) and a push of 3 changed rows.

    .venv/bin/python bench/catalog_push.py [--items 100000] [--max-growth-mb 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.server import SandboxServer  # noqa: E402
from tests.catalog.helpers import write_catalogue, write_config  # noqa: E402


def push(cfg: Path, *files: Path) -> tuple[float, list[dict[str, int]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "tests.catalog.push_child", str(cfg), *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"file"')]
    if out.returncode != 0 or len(results) != len(files):
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"push failed with exit code {out.returncode}")
    return elapsed, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--max-growth-mb", type=float, default=None, help="fail above this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        warm = write_catalogue(tmp / "warm.csv", range(2000))
        big = write_catalogue(tmp / "big.csv", range(args.items))
        print(
            f"generated {args.items:,} rows in {time.perf_counter() - t:.1f} s"
            f" ({big.stat().st_size / 1e6:.1f} MB)"
        )
        with SandboxServer(tmp / "processing.db") as server:
            cfg = write_config(tmp / "posbridge.toml", server.url, tmp)
            elapsed, (w, b) = push(cfg, warm, big)
            growth_mb = (b["maxrss_kib"] - w["maxrss_kib"]) / 1024
            print(
                f"push of {args.items:,} items (after a 2,000-item warm-up): {elapsed:.1f} s"
                f" in all, {args.items / elapsed:,.0f} items/s"
            )
            print(
                f"peak RSS: {w['maxrss_kib'] / 1024:.1f} MB after warm-up,"
                f" {b['maxrss_kib'] / 1024:.1f} MB after the big push (+{growth_mb:.1f} MB)"
            )
            print(f"processing now knows {server.inventory()['goods']:,} goods")
            elapsed, _ = push(cfg, big)
            print(f"second push, nothing changed: {elapsed:.1f} s")
            write_catalogue(
                big, range(args.items), names={1: "a", args.items // 2: "b", args.items - 1: "c"}
            )
            elapsed, _ = push(cfg, big)
            print(f"push of 3 changed rows: {elapsed:.1f} s")
        if args.max_growth_mb is not None and growth_mb > args.max_growth_mb:
            print(f"FAIL: memory grew {growth_mb:.1f} MB > {args.max_growth_mb} MB")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
