"""An emulator per test, and raw hosts on its pty and its TCP port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sandbox.registrar import RegistrarEmulator
from tests.sandbox.registrar.wire import RawHost


@pytest.fixture
def emulator() -> Iterator[RegistrarEmulator]:
    emu = RegistrarEmulator(ack_timeout=0.5)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def pty_host(emulator: RegistrarEmulator) -> Iterator[RawHost]:
    host = RawHost.open_pty(emulator.start_pty())
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def tcp_host(emulator: RegistrarEmulator) -> Iterator[RawHost]:
    host = RawHost.connect(emulator.start_tcp(port=0))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(params=["pty", "tcp"])
def host(request: pytest.FixtureRequest, emulator: RegistrarEmulator) -> Iterator[RawHost]:
    """The same test over the serial stand-in and over TCP."""
    opener: Callable[[], RawHost] = (
        (lambda: RawHost.open_pty(emulator.start_pty()))
        if request.param == "pty"
        else (lambda: RawHost.connect(emulator.start_tcp(port=0)))
    )
    raw = opener()
    try:
        yield raw
    finally:
        raw.close()
