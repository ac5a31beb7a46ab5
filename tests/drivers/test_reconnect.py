"""Unplug/replug with real ptys: the device goes offline, comes back, and leaks nothing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from drivers.device import DataEvent, ErrorEvent, PowerState, StatusEvent
from drivers.printer import PrintQueue, ReceiptPrinter
from drivers.reconnect import Backoff
from drivers.scanner.device import ScannerDevice
from drivers.transport.file import FileTransport
from drivers.transport.serial import SerialTransport

try:
    from tests.drivers.pty_helpers import Events, Pty, open_fds, wait_power
except ImportError:
    from pty_helpers import Events, Pty, open_fds, wait_power  # type: ignore[no-redef,import-not-found]


def test_backoff_grows_and_is_bounded() -> None:
    b = Backoff(initial=0.1, maximum=1.0, factor=2)
    assert [b.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.next() == 0.1


def test_one_backoff_policy_for_reconnects_and_the_print_queue() -> None:
    queue = PrintQueue(ReceiptPrinter("p", FileTransport(os.devnull)))
    assert type(queue.backoff) is Backoff  # one class: (initial, maximum, factor) everywhere
    b = Backoff(0.1, 1.0, 3)
    assert [b.delay(n) for n in (1, 2, 3, 4, 100, 10**6)] == pytest.approx(
        [0.1, 0.3, 0.9, 1.0, 1.0, 1.0]
    )
    assert [b.next() for _ in range(5)] == [b.delay(n) for n in range(1, 6)]
    assert b.delay(1) == 0.1  # delay() is pure: next() did not move it


@pytest.mark.parametrize("bad", [(0, 1, 2), (2, 1, 2), (0.1, 1, 0.5)])
def test_backoff_rejects_bad_values(bad: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(*bad)


def plug(link: Path) -> Pty:
    """A new 'device': a fresh pty, with the stable by-id style symlink pointed at it."""
    port = Pty()
    tmp = link.with_suffix(".new")
    tmp.symlink_to(port.path)
    tmp.replace(link)  # atomic, as udev does it
    return port


def test_hundred_unplug_replug_cycles_leak_nothing(tmp_path: Path) -> None:
    link = tmp_path / "usb-Honeywell_Scanner-if00"
    port = plug(link)
    dev = ScannerDevice(
        "scanner0", lambda: SerialTransport(str(link)), backoff=Backoff(0.005, 0.02)
    )
    events = Events()
    dev.add_listener(events)
    dev.open()
    dev.claim()
    dev.enable()
    wait_power(events, dev, PowerState.ONLINE)
    threads_before = threading.active_count()
    fds_before = open_fds()
    try:
        for cycle in range(100):
            mark = events.mark()
            port.send(f"SCAN{cycle}\r".encode())
            got = events.wait_for(lambda e: isinstance(e, DataEvent), start=mark)
            assert isinstance(got, DataEvent) and got.data.text == f"SCAN{cycle}"
            mark = events.mark()
            port.unplug()
            offline = wait_power(events, dev, PowerState.OFFLINE, start=mark)
            assert str(link) in offline.detail["reason"]
            mark = events.mark()
            port = plug(link)
            wait_power(events, dev, PowerState.ONLINE, start=mark)
        assert threading.active_count() == threads_before
        assert len(open_fds()) == len(fds_before)  # numbers may be reused differently
    finally:
        dev.close()
        port.unplug()
    assert threading.active_count() == threads_before - 1  # the reader thread is gone
    statuses = [e.power for e in events.of(StatusEvent)]
    assert statuses.count(PowerState.OFFLINE) >= 100


def test_reconnect_now_skips_the_backoff(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    dev = ScannerDevice("s", lambda: SerialTransport(str(link)), backoff=Backoff(60, 60))
    events = Events()
    dev.add_listener(events)
    dev.open()
    try:
        wait_power(events, dev, PowerState.OFFLINE)  # now waiting 60 s before the next try
        with plug(link):
            mark = events.mark()
            dev.reconnect_now()
            wait_power(events, dev, PowerState.ONLINE, start=mark)
    finally:
        dev.close()


def test_close_while_offline_is_prompt(tmp_path: Path) -> None:
    dev = ScannerDevice(
        "s", lambda: SerialTransport(str(tmp_path / "none")), backoff=Backoff(60, 60)
    )
    events = Events()
    dev.add_listener(events)
    dev.open()
    wait_power(events, dev, PowerState.OFFLINE)
    before = threading.active_count()
    start = time.monotonic()
    dev.close()  # must not sit out the 60 s backoff
    assert time.monotonic() - start < 5
    assert threading.active_count() == before - 1


def test_factory_bug_is_reported_and_retried_not_fatal() -> None:
    calls: list[int] = []

    def factory() -> SerialTransport:
        calls.append(1)
        raise RuntimeError("config typo")

    dev = ScannerDevice("s", factory, backoff=Backoff(0.001, 0.002))
    events = Events()
    dev.add_listener(events)
    dev.open()
    try:
        events.wait_for(lambda e: isinstance(e, ErrorEvent) and "config typo" in e.message)
        wait_power(events, dev, PowerState.OFFLINE)
        events.wait_for(lambda e: len(calls) >= 3)  # still retrying
    finally:
        dev.close()
