"""A big catalogue pushes in one command without the push holding it in memory.

The push runs in a child process (tests/catalog/push_child.py): first a 2,000-item
file, which loads every module and warms every cache, then a 20,000-item file.  The
child's peak resident memory may not grow by more than a few MB between the two: the
18,000 extra items as wire models alone would take well over 10 MB.  The 100,000-item
case is in bench/catalog_push.py (about a minute on a loaded 2-core machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.server import SandboxServer
from tests.catalog.conftest import processing_goods
from tests.catalog.helpers import write_catalogue

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 20_000
MAX_GROWTH_MB = 10


def test_20k_items_push_with_flat_memory(
    cfg: Path, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    warm = write_catalogue(tmp_path / "warm.csv", range(2000))
    big = write_catalogue(tmp_path / "big.csv", range(ITEMS))
    out = subprocess.run(
        [sys.executable, "-m", "tests.catalog.push_child", str(cfg), str(warm), str(big)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    first, second = (json.loads(x) for x in out.stdout.splitlines() if x.startswith('{"file"'))
    assert first["rc"] == 0 and second["rc"] == 0
    growth_mb = (second["maxrss_kib"] - first["maxrss_kib"]) / 1024
    assert growth_mb < MAX_GROWTH_MB, f"peak memory grew {growth_mb:.1f} MB for {ITEMS} items"
    assert "18,000 new, 0 changed, 2,000 unchanged" in out.stdout
    # progress went to stderr as plain lines (not a terminal): one per tenth of the way
    progress = [x for x in out.stderr.splitlines() if x.startswith("catalog push: ")]
    assert progress[-1].startswith("catalog push: 18,000/18,000 items (100%)")
    goods = processing_goods(sandbox_server)
    assert all(f"G{n}" in goods for n in range(ITEMS))
