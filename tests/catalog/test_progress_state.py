"""The progress display on a real pty and in a log, and the state file's guarantees."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import sqlite3
import stat
import struct
import termios
from pathlib import Path

import pytest

from bridge.catalog.progress import Progress
from bridge.catalog.state import CatalogState, StateError
from tests.catalog.conftest import Run
from tests.catalog.helpers import write_catalogue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    return out


def test_bar_on_a_terminal_is_redrawn_in_place() -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        clock = Clock()
        progress = Progress(2500, stream, clock=clock)
        assert progress.mode == "bar"
        for n in (1000, 1000, 500):
            clock.now += 1.0
            progress.advance(n)
        progress.finish()
        text = read_all(master).decode()
    finally:
        stream.close()
        os.close(master)
    frames = [f for f in text.split("\r") if f.strip()]
    assert len(frames) == 4  # three chunks and the final redraw
    assert frames[0] == (
        "catalog push [################------------------------] 1,000/2,500 items (40%),"
        " 1,000 items/s\x1b[K"
    )
    assert frames[-1].startswith("catalog push [" + "#" * 40 + "] 2,500/2,500 items (100%)")
    assert text.endswith("\r\n") and text.count("\n") == 1  # the pty turns \n into \r\n
    assert all(f.endswith("\x1b[K") for f in frames)


def test_bar_is_redrawn_at_most_ten_times_a_second() -> None:
    out = io.StringIO()
    clock = Clock()
    progress = Progress(100_000, out, "bar", clock=clock)
    for _ in range(99):
        clock.now += 0.01
        progress.advance(1000)
    assert out.getvalue().count("\r") == 10


def test_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as log:
        clock = Clock()
        progress = Progress(100_000, log, clock=clock)
        assert progress.mode == "lines"
        for _ in range(100):
            clock.now += 0.1
            progress.advance(1000)
        progress.finish()
    lines = (tmp_path / "log").read_text().splitlines()
    assert len(lines) == 10 and "\r" not in "".join(lines)
    assert lines[0] == "catalog push: 10,000/100,000 items (10%), 10,000 items/s"
    assert lines[-1].startswith("catalog push: 100,000/100,000 items (100%)")


def test_plain_lines_also_every_half_minute_on_a_slow_push() -> None:
    out = io.StringIO()
    clock = Clock()
    progress = Progress(100_000, out, "lines", clock=clock)
    progress.advance(100)
    clock.now += 31
    progress.advance(100)
    assert out.getvalue().splitlines() == ["catalog push: 200/100,000 items (0%), 6 items/s"]


# ------------------------------------------------------------------ state


def test_state_file_is_created_0600_and_tightened_if_loose(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "state.sqlite"
    with CatalogState.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with CatalogState.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_foreign_or_newer_state_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(StateError, match="some other SQLite database"):
        CatalogState.open(other)
    newer = tmp_path / "newer.sqlite"
    with CatalogState.open(newer) as state:
        state.conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match="written by a newer posbridge"):
        CatalogState.open_readonly(newer)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StateError, match="not usable"):
        CatalogState.open(garbage)


def test_a_second_push_on_the_same_state_is_refused(
    catalog: Run, cfg: Path, state_path: Path, tmp_path: Path
) -> None:
    state_path.parent.mkdir(parents=True)
    lock_path = state_path.with_name(state_path.name + ".lock")
    with lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running push holds it
        result = catalog(
            "--config", cfg, "catalog", "push", write_catalogue(tmp_path / "g.csv", [1])
        )
    assert result.rc == 2 and "another catalog push is running" in result.err
    assert catalog("--config", cfg, "catalog", "push", tmp_path / "g.csv").rc == 0


def test_status_and_dry_run_with_only_a_state_file(
    catalog: Run, cfg: Path, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "g.csv", range(3))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    # no config at all: --state is enough to look
    write_catalogue(path, range(4))
    status = catalog(
        "--config", tmp_path / "missing.toml", "catalog", "status", "--state", state_path
    )
    assert status.rc == 0 and "items known          3" in status.out
    dry = catalog(
        "--config",
        tmp_path / "missing.toml",
        "catalog",
        "push",
        path,
        "--dry-run",
        "--state",
        state_path,
    )
    assert dry.rc == 0 and "+ G3" in dry.out and "G0" not in dry.out
    missing = catalog("--config", tmp_path / "missing.toml", "catalog", "push", path)
    assert missing.rc == 2 and "file not found" in missing.err
