"""Fixtures shared by the whole suite: a real sandbox over loopback and clients for it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from bridge.loyalty.client import LoyaltyClient
from sandbox.server import SandboxServer

LOGIN, PASSWORD = "register-1", "secret-1"

# Two shared cores under load: property tests judge correctness, not speed.
settings.register_profile("posbridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("posbridge")


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path / "processing.db") as server:
        yield server


@pytest.fixture
def make_client(
    sandbox_server: SandboxServer, tmp_path: Path
) -> Iterator[Callable[..., LoyaltyClient]]:
    made: list[LoyaltyClient] = []

    def make(**kw: Any) -> LoyaltyClient:
        kw.setdefault("lock_file", tmp_path / "processing.lock")
        url = kw.pop("url", sandbox_server.url)
        login = kw.pop("login", LOGIN)
        password = kw.pop("password", PASSWORD)
        client = LoyaltyClient(url, login, password, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., LoyaltyClient]) -> LoyaltyClient:
    return make_client()


def admin(server: SandboxServer, path: str) -> Any:
    """Read the sandbox's own view (status, ledger, purchase) over HTTP, as a peer would."""
    base = server.url.rsplit("/publicapi", 1)[0]
    response = httpx.get(f"{base}/sandbox/{path}", timeout=5)
    response.raise_for_status()
    from bridge.loyalty.protocol import loads

    return loads(response.content)


@pytest.fixture
def tb() -> Iterator[Any]:
    """The process's umockdev testbed, emptied before and after the test."""
    try:
        from tests.drivers import umockdev_helpers as mock
    except ImportError:  # tests/drivers on sys.path instead of the tests package
        import umockdev_helpers as mock  # type: ignore[no-redef,import-not-found]

    bed = mock.shared_testbed()
    mock.remove_all(bed)
    yield bed
    mock.remove_all(bed)


@pytest.fixture(autouse=True)
def _posbridge_log_level() -> Iterator[None]:
    """Commands run in-process (`main(["demo", ...])`) set the posbridge logger's level
    as a process would; put it back so a later test's log lines are not dropped."""
    logger = logging.getLogger("posbridge")
    level = logger.level
    yield
    logger.setLevel(level)
