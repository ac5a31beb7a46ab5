"""Fixtures of the catalogue tests: the CLI entry, configs pointing at the sandbox or a gate."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge import cli
from sandbox.server import SandboxServer
from tests.catalog.helpers import GateServer, write_config

CATALOG_COMMAND = ("bridge.commands.catalog", "push the catalogue to processing")


@dataclass
class Result:
    rc: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def catalog(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`posbridge <args>` in this process, with `catalog` registered as the lead will."""
    monkeypatch.setitem(cli.COMMANDS, "catalog", CATALOG_COMMAND)

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        rc = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    return run


@pytest.fixture
def cfg(sandbox_server: SandboxServer, tmp_path: Path) -> Path:
    return write_config(tmp_path / "posbridge.toml", sandbox_server.url, tmp_path)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "catalog-state.sqlite"


@pytest.fixture
def gate(sandbox_server: SandboxServer) -> Iterator[GateServer]:
    with GateServer(sandbox_server.url) as server:
        yield server


@pytest.fixture
def gated_cfg(gate: GateServer, tmp_path: Path) -> Path:
    return write_config(tmp_path / "gated.toml", gate.url, tmp_path)


def processing_goods(server: SandboxServer) -> dict[str, tuple[str | None, str, str, int | None]]:
    """The sandbox's catalogue as stored in its own SQLite file."""
    conn = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)
    try:
        return {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in conn.execute("SELECT goods_id, barcode, name, grp, price_cents FROM goods")
        }
    finally:
        conn.close()
