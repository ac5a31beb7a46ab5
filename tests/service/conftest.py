"""A running service (real uvicorn on loopback) in front of a real sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import Config, parse
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port

TOKEN = "test-token-0123456789"


def service_config(
    tmp_path: Path, sandbox_url: str, devices: list[dict[str, Any]] | None = None, **receipt: Any
) -> Config:
    return parse(
        {
            "processing": {
                "url": sandbox_url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
                "read_timeout": 5.0,
            },
            "journal": {
                "path": str(tmp_path / "journal.sqlite"),
                "probe_min_seconds": 0.05,
                "probe_max_seconds": 0.2,
            },
            "api": {"port": free_port(), "token": TOKEN},
            "receipt": receipt,
            "devices": devices or [],
        }
    )


@pytest.fixture
def make_service(tmp_path: Path, sandbox_server: SandboxServer) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def make(**kw: Any) -> Service:
        cfg = service_config(tmp_path, sandbox_server.url, **kw)
        svc = Service(cfg, TOKEN).start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


@pytest.fixture
def api(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30) as c:
        yield c
