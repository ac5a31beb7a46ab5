"""Fixtures shared by the whole suite: a real sandbox over loopback and clients for it."""

from __future__ import annotations

import logging
import os
import sys
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


# ------------------------------------------------------------------ the machine stays as found
# CI runs as root, then installs the .deb, which refuses to start if /var/lib/posbridge is
# already there.  A test that falls back to a default path (a lock file, a journal) would
# write into the register's real directories: record every such write with the test that
# made it, and fail the run naming them.
SYSTEM_DIRS = ("/etc/posbridge", "/var/lib/posbridge", "/opt/posbridge")
_present_at_start = {d for d in SYSTEM_DIRS if os.path.lexists(d)}
_system_writes: list[str] = []
_current_test = ["(collection)"]


def _watch_system_dirs(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("open", "os.mkdir") or not args or not isinstance(args[0], (str, Path)):
        return
    path = os.fspath(args[0])
    if not path.startswith(SYSTEM_DIRS):
        return
    if event == "open" and (len(args) < 3 or not isinstance(args[2], int)):
        return
    if event == "open" and not args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        return
    _system_writes.append(f"{_current_test[0]}: {event} {path}")


sys.addaudithook(_watch_system_dirs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _current_test[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current_test[0] = "(between tests)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    appeared = sorted(d for d in SYSTEM_DIRS if os.path.lexists(d) and d not in _present_at_start)
    if not (_system_writes or appeared):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["tests wrote into the register's own directories (use tmp_path):"]
    lines += [f"  {w}" for w in dict.fromkeys(_system_writes)]
    lines += [f"  {d} appeared during the run" for d in appeared]
    if reporter is not None:
        reporter.write_line("\n" + "\n".join(lines), red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
