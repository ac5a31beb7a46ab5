"""Raw device bytes never leave a driver in the clear, and Russian-layout swipes are read.

Real ptys through SerialTransport, as in test_scanner_device / test_msr_device.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from evdev import ecodes as e

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.msr.device import MsrConfig, MsrDevice, decode_swipe
from drivers.msr.tracks import CardSwipe
from drivers.msr.wedge import WedgeCardReader
from drivers.scanner.device import ScannerConfig, ScannerDevice
from drivers.scanner.wedge import WedgeScanner
from drivers.transport.serial import SerialTransport

try:
    from tests.drivers.pty_helpers import Events, Pty, wait_power
except ImportError:
    from pty_helpers import Events, Pty, wait_power  # type: ignore[no-redef,import-not-found]

PAN = "4111111111111111"
TRACK2 = f";{PAN}=2512101123456789?"


@pytest.fixture
def port() -> Iterator[Pty]:
    with Pty() as p:
        yield p


def test_incomplete_scan_error_holds_no_track_data(
    port: Pty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dev = ScannerDevice(
        "scanner0", lambda: SerialTransport(port.path), ScannerConfig(idle_timeout=0.02)
    )
    events = Events()
    dev.add_listener(events)
    dev.open()
    dev.claim()
    dev.enable()
    try:
        wait_power(events, dev, PowerState.ONLINE)
        port.send(TRACK2.encode())  # a card swiped through a scanner's reader: no CR
        err = events.wait_for(lambda x: isinstance(x, ErrorEvent))
    finally:
        dev.close()
    assert isinstance(err, ErrorEvent)
    assert err.message == (
        f"incomplete scan discarded: {len(TRACK2)} bytes without the suffix b'\\r', "
        "shaped ';9999999999999999=9999999999999999?'"
    )
    everything = err.message + caplog.text + repr(events.items)
    assert "4111" not in everything and "2512" not in everything


def test_incomplete_wedge_scan_error_holds_no_keys() -> None:
    dev = WedgeScanner("wedge0")
    got: list[object] = []
    dev.add_listener(got.append)
    dev.open()
    dev.claim()
    dev.enable()
    t = 100.0
    for char in PAN:
        code = getattr(e, f"KEY_{char}")
        dev.feed_key(code, 1, t)
        dev.feed_key(code, 0, t + 0.001)
        t += 0.005
    dev.poll(t + 1)  # no Enter came
    [err] = [x for x in got if isinstance(x, ErrorEvent)]
    assert (
        err.message == "incomplete scan discarded: 16 keys without Enter, shaped '9999999999999999'"
    )


@pytest.mark.parametrize("encoding", ["utf-8", "cp1251"])
def test_serial_reader_reads_a_russian_layout_swipe(port: Pty, encoding: str) -> None:
    """`ж7000000000017=4912,` is `;7000000000017=4912?` typed under ЙЦУКЕН and forwarded."""
    dev = MsrDevice("msr0", lambda: SerialTransport(port.path), MsrConfig(suffix=b"\r"))
    events = Events()
    dev.add_listener(events)
    dev.open()
    dev.claim()
    dev.enable()
    try:
        wait_power(events, dev, PowerState.ONLINE)
        port.send("ж7000000000017=4912,\r".encode(encoding))
        got = events.wait_for(lambda x: isinstance(x, DataEvent | ErrorEvent))
    finally:
        dev.close()
    assert isinstance(got, DataEvent), got
    assert isinstance(got.data, CardSwipe) and got.data.number == "7000000000017"
    assert got.data.tracks[2].expiry == "4912"


def test_decode_swipe_keeps_ascii_and_reads_cyrillic() -> None:
    assert decode_swipe(b"\x02;123?\x03") == "\x02;123?\x03"
    assert decode_swipe("ж1?".encode()) == "ж1?"
    assert decode_swipe("ж1?".encode("cp1251")) == "ж1?"


def test_wedge_reader_reads_a_track_typed_on_us_key_positions() -> None:
    """The evdev path reads key positions, below any layout: `;...?` whatever the desktop has."""
    reader = WedgeCardReader("wedge-msr", swipe_gap=0.1)
    got: list[object] = []
    reader.add_listener(got.append)
    reader.open()
    reader.claim()
    reader.enable()
    keys = {";": (e.KEY_SEMICOLON, False), "=": (e.KEY_EQUAL, False), "?": (e.KEY_SLASH, True)}
    keys.update({d: (getattr(e, f"KEY_{d}"), False) for d in "0123456789"})
    t = 10.0
    for char in ";7000000000017=4912?":
        code, shifted = keys[char]
        if shifted:
            reader.feed_key(e.KEY_LEFTSHIFT, 1, t)
        reader.feed_key(code, 1, t)
        reader.feed_key(code, 0, t + 0.001)
        if shifted:
            reader.feed_key(e.KEY_LEFTSHIFT, 0, t + 0.002)
        t += 0.005
    reader.feed_key(e.KEY_ENTER, 1, t)
    reader.feed_key(e.KEY_ENTER, 0, t + 0.001)
    reader.poll(t + 1)
    [swipe] = [x for x in got if isinstance(x, DataEvent)]
    assert isinstance(swipe.data, CardSwipe) and swipe.data.number == "7000000000017"
