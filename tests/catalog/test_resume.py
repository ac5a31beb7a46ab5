"""An interrupted push continues where it stopped: nothing accepted is sent twice, nothing lost.

The interruptions are real: a push process killed with SIGKILL while its request is
at processing, processing answering 503 in the middle, and an answer lost after
processing took the chunk (then, and only then, that chunk is sent again).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sandbox.server import SandboxServer
from tests.catalog.conftest import Run, processing_goods
from tests.catalog.helpers import GateServer, write_catalogue

ROOT = Path(__file__).resolve().parents[2]


def pushed_count(state_path: Path) -> int:
    conn = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM pushed").fetchone()[0])
    finally:
        conn.close()


def test_processing_failing_mid_push_then_rerun_sends_only_the_rest(
    catalog: Run,
    gated_cfg: Path,
    gate: GateServer,
    sandbox_server: SandboxServer,
    state_path: Path,
    tmp_path: Path,
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3500))
    gate.gate.policy = lambda n: "fail" if n == 3 else "forward"
    first = catalog("--config", gated_cfg, "catalog", "push", path)
    assert first.rc == 3
    assert "processing unavailable (HTTP 503)" in first.err
    assert "2,000 item(s) accepted and recorded; 1,500 not sent yet" in first.err
    assert pushed_count(state_path) == 2000
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["incomplete"] is True and status["itemsKnown"] == 2000

    gate.gate.policy = lambda n: "forward"
    second = catalog("--config", gated_cfg, "catalog", "push", path)
    assert second.rc == 0, second.err
    assert "1,500 new" in second.out
    sent = Counter(gate.gate.forwarded_ids())
    assert set(sent) == {f"G{n}" for n in range(3500)} and set(sent.values()) == {1}
    assert {f"G{n}" for n in range(3500)} <= set(processing_goods(sandbox_server))
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["incomplete"] is False and status["itemsKnown"] == 3500


def test_an_answer_lost_after_processing_took_the_chunk_resends_that_chunk_only(
    catalog: Run, gated_cfg: Path, gate: GateServer, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3000))
    gate.gate.policy = lambda n: "lose_answer" if n == 2 else "forward"
    first = catalog("--config", gated_cfg, "catalog", "push", path)
    assert first.rc == 3 and "connection lost" in first.err
    assert pushed_count(state_path) == 1000  # the lost chunk is not recorded

    gate.gate.policy = lambda n: "forward"
    assert catalog("--config", gated_cfg, "catalog", "push", path).rc == 0
    sent = Counter(gate.gate.forwarded_ids())
    twice = {g for g, n in sent.items() if n == 2}
    assert twice == {f"G{n}" for n in range(1000, 2000)}  # the unanswered chunk, once more
    assert set(sent.values()) == {1, 2} and len(sent) == 3000
    assert pushed_count(state_path) == 3000


def test_push_process_killed_mid_request_resumes_without_resending(
    catalog: Run, gated_cfg: Path, gate: GateServer, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(4200))
    gate.gate.policy = lambda n: "hold" if n == 3 else "forward"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.catalog.push_child", str(gated_cfg), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert gate.gate.holding.wait(60), "the push never reached its third chunk"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert pushed_count(state_path) == 2000

    gate.gate.policy = lambda n: "forward"
    result = catalog("--config", gated_cfg, "catalog", "push", path)
    assert result.rc == 0, result.err
    assert "2,200 new" in result.out
    sent = Counter(gate.gate.forwarded_ids())  # the held request never reached processing
    assert len(sent) == 4200 and set(sent.values()) == {1}
    assert pushed_count(state_path) == 4200


def test_interrupted_full_push_is_finished_without_replacing_again(
    catalog: Run,
    gated_cfg: Path,
    gate: GateServer,
    sandbox_server: SandboxServer,
    state_path: Path,
    tmp_path: Path,
) -> None:
    old = write_catalogue(tmp_path / "old.csv", range(100))
    assert catalog("--config", gated_cfg, "catalog", "push", old).rc == 0
    new = write_catalogue(tmp_path / "new.csv", range(50, 2550))
    gate.gate.policy = lambda n: "fail" if n == 3 else "forward"
    first = catalog("--config", gated_cfg, "catalog", "push", new, "--full")
    assert first.rc == 3
    assert [u.replace for u in gate.gate.uploads[1:]] == [True, False]
    assert set(processing_goods(sandbox_server)) == {f"G{n}" for n in range(50, 1050)}
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["fullPushInProgress"] is True

    gate.gate.policy = lambda n: "forward"
    second = catalog("--config", gated_cfg, "catalog", "push", new, "--full")
    assert second.rc == 0, second.err
    assert "continuing an interrupted full push" in second.out
    rest = gate.gate.uploads[3:]
    assert [u.replace for u in rest] == [False, False]
    assert sum(len(u.goods_ids) for u in rest) == 1500
    assert set(processing_goods(sandbox_server)) == {f"G{n}" for n in range(50, 2550)}
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["fullPushInProgress"] is False and status["lastFullPush"] is not None
    assert pushed_count(state_path) == 2500


def test_interrupted_full_push_with_items_since_dropped_replaces_again(
    catalog: Run,
    gated_cfg: Path,
    gate: GateServer,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(2500))
    gate.gate.policy = lambda n: "fail" if n == 2 else "forward"
    assert catalog("--config", gated_cfg, "catalog", "push", path, "--full").rc == 3
    write_catalogue(path, range(10, 2500))  # G0..G9 were sent after the replace, now gone
    gate.gate.policy = lambda n: "forward"
    second = catalog("--config", gated_cfg, "catalog", "push", path, "--full")
    assert second.rc == 0, second.err
    assert "continuing an interrupted full push" not in second.out
    assert [u.replace for u in gate.gate.uploads[2:]] == [True, False, False]
    assert set(processing_goods(sandbox_server)) == {f"G{n}" for n in range(10, 2500)}


def test_an_answer_that_does_not_add_up_records_nothing_of_that_chunk(
    catalog: Run, gated_cfg: Path, gate: GateServer, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(2500))
    gate.gate.policy = lambda n: {2: "unnamed_rejection", 3: "short_count"}.get(n, "forward")
    first = catalog("--config", gated_cfg, "catalog", "push", path)
    assert first.rc == 1
    assert "rejected (unnamed): item 7: no such group" in first.out
    assert "processing said 499 of 500 items were accepted with 0 rejected" in first.out
    assert "1,500 item(s) unconfirmed by processing; sent again next time" in first.out
    assert pushed_count(state_path) == 1000
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["incomplete"] is True

    gate.gate.policy = lambda n: "forward"
    second = catalog("--config", gated_cfg, "catalog", "push", path)
    assert second.rc == 0, second.out
    assert [len(u.goods_ids) for u in gate.gate.uploads[3:]] == [1000, 500]
    assert pushed_count(state_path) == 2500


def test_status_right_after_a_killed_push_still_reads(
    catalog: Run, cfg: Path, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    # a push killed inside a transaction leaves a hot journal behind
    code = (
        "import sqlite3, os, sys\n"
        f"c = sqlite3.connect({str(state_path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        'c.execute("DELETE FROM pushed")\n'
        "c.execute('PRAGMA cache_size=1')\n"
        "c.executemany('INSERT INTO pushed VALUES (?, ?, ?)',"
        " ((f'X{i}', b'h' * 16, 'now') for i in range(5000)))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert state_path.with_name(state_path.name + "-journal").exists()
    status = json.loads(catalog("--config", cfg, "catalog", "status", "--json").out)
    assert status["itemsKnown"] == 3
