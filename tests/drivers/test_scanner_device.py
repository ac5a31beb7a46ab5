"""ScannerDevice reading a real pty through SerialTransport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.reconnect import Backoff
from drivers.scanner.device import ScannerConfig, ScannerDevice
from drivers.scanner.scan import ScanEvent, ScanOptions
from drivers.transport.serial import SerialTransport

try:
    from tests.drivers.pty_helpers import Events, Pty, wait_power
except ImportError:
    from pty_helpers import Events, Pty, wait_power  # type: ignore[no-redef,import-not-found]


def is_scan(e: object) -> bool:
    return isinstance(e, DataEvent) and isinstance(e.data, ScanEvent)


@pytest.fixture
def port() -> Iterator[Pty]:
    with Pty() as p:
        yield p


def start(port: Pty, config: ScannerConfig | None = None) -> tuple[ScannerDevice, Events]:
    dev = ScannerDevice("scanner0", lambda: SerialTransport(port.path), config)
    events = Events()
    dev.add_listener(events)
    dev.open()
    dev.claim()
    dev.enable()
    wait_power(events, dev, PowerState.ONLINE)
    return dev, events


def scans(events: Events, n: int) -> list[ScanEvent]:
    events.wait_for(lambda e: len([x for x in events.items if is_scan(x)]) >= n)
    return [e.data for e in events.of(DataEvent) if isinstance(e.data, ScanEvent)]


def test_scans_arrive_split_and_glued(port: Pty) -> None:
    dev, events = start(port, ScannerConfig(idle_timeout=0.5))  # a busy CI may pause us
    try:
        port.send(b"]E0400638")
        port.send(b"1333931\r")
        port.send(b"]d2\x1d0104600000000000\r]C1ABC\r")
        got = scans(events, 3)
        assert [(s.symbology, s.text, s.device) for s in got] == [
            ("]E0", "4006381333931", "scanner0"),
            ("]d2", "\x1d0104600000000000", "scanner0"),
            ("]C1", "ABC", "scanner0"),
        ]
        assert got[0].raw == b"]E04006381333931"
    finally:
        dev.close()


def test_incomplete_scan_reported_not_delivered(port: Pty) -> None:
    dev, events = start(port, ScannerConfig(idle_timeout=0.02))
    try:
        port.send(b"40063")
        err = events.wait_for(lambda e: isinstance(e, ErrorEvent))
        assert isinstance(err, ErrorEvent) and "incomplete scan" in err.message
        assert "5 bytes" in err.message
        port.send(b"NEXT\r")
        [scan] = scans(events, 1)
        assert scan.text == "NEXT"
    finally:
        dev.close()


def test_idle_framing_and_prefix(port: Pty) -> None:
    config = ScannerConfig(suffix=None, idle_timeout=0.02, scan=ScanOptions(prefix=b"\x02"))
    dev, events = start(port, config)
    try:
        port.send(b"\x02]Q1caf\xe9")
        [scan] = scans(events, 1)
        assert (scan.symbology, scan.text) == ("]Q1", "café")
    finally:
        dev.close()


def test_scan_while_disabled_is_reported_and_not_delivered_later(port: Pty) -> None:
    dev, events = start(port)
    try:
        dev.disable()
        port.send(b"STALE\r")
        err = events.wait_for(lambda e: isinstance(e, ErrorEvent))
        assert isinstance(err, ErrorEvent) and "not enabled" in err.message
        dev.enable()
        port.send(b"FRESH\r")
        assert [s.text for s in scans(events, 1)] == ["FRESH"]
    finally:
        dev.close()


def test_missing_port_goes_offline_naming_it(tmp_path: object) -> None:
    path = f"{tmp_path}/ttyACM-missing"
    dev = ScannerDevice("s", lambda: SerialTransport(path), backoff=Backoff(0.01, 0.05))
    events = Events()
    dev.add_listener(events)
    dev.open()
    try:
        status = wait_power(events, dev, PowerState.OFFLINE)
        assert "ttyACM-missing" in status.detail["reason"]
    finally:
        dev.close()
    assert dev.power is PowerState.UNKNOWN


def test_broken_listener_does_not_stop_scanning(port: Pty) -> None:
    dev, events = start(port)

    def bad(event: object) -> None:
        if is_scan(event):
            raise RuntimeError("POS callback bug")

    dev.add_listener(bad)
    try:
        port.send(b"ONE\rTWO\r")
        assert [s.text for s in scans(events, 2)] == ["ONE", "TWO"]
        assert any("POS callback bug" in e.message for e in events.of(ErrorEvent))
    finally:
        dev.close()
