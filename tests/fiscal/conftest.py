"""A real service (uvicorn on loopback) with a real Shtrih-M emulator over TCP as its
registrar, in front of the real processing sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.server import Service
from sandbox.registrar.emulator import RegistrarEmulator
from sandbox.server import SandboxServer
from tests.service.conftest import TOKEN, service_config


@pytest.fixture
def emulator() -> Iterator[RegistrarEmulator]:
    with RegistrarEmulator() as emu:
        yield emu


def registrar_device(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "kkt",
        "kind": "registrar",
        "connection": "tcp",
        "host": "127.0.0.1",
        "tcp_port": port,
        **extra,
    }


class Till:
    """The service and the POS's client for it; `restart` keeps the files (a new process)."""

    def __init__(self, tmp_path: Path, sandbox: SandboxServer, port: int, **device: Any) -> None:
        self.config = service_config(
            tmp_path, sandbox.url, devices=[registrar_device(port, **device)], registrar="kkt"
        )
        self.service = Service(self.config, TOKEN).start()
        self.api = httpx.Client(
            base_url=self.service.url, headers={"X-Posbridge-Token": TOKEN}, timeout=60
        )

    def restart(self) -> None:
        self.stop()
        self.service = Service(self.config, TOKEN).start()
        self.api = httpx.Client(
            base_url=self.service.url, headers={"X-Posbridge-Token": TOKEN}, timeout=60
        )

    def stop(self) -> None:
        self.api.close()
        self.service.stop()


@pytest.fixture
def till(
    tmp_path: Path, sandbox_server: SandboxServer, emulator: RegistrarEmulator
) -> Iterator[Till]:
    t = Till(tmp_path, sandbox_server, emulator.start_tcp())
    yield t
    t.stop()
