"""Fixtures for tests that need a running sandbox processing server.

`sandbox` is a real server on a real SQLite file under tmp_path, listening on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import SandboxServer
from tests.sandbox.wire import Api


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox.db").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[Api]:
    client = Api(sandbox)
    try:
        yield client
    finally:
        client.close()
