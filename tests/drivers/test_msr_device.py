"""MsrDevice on a real pty, and a keyboard-wedge reader's keys through the HID decoder."""

from __future__ import annotations

import logging

import pytest
from evdev import ecodes as e

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.msr.device import MsrConfig, MsrDevice, swipe_event
from drivers.msr.tracks import CardSwipe, TrackStatus
from drivers.scanner.keymap import HidDecoder
from drivers.transport.serial import SerialTransport

try:
    from tests.drivers.pty_helpers import Events, Pty, wait_power
except ImportError:
    from pty_helpers import Events, Pty, wait_power  # type: ignore[no-redef,import-not-found]

PAN = "5555555555554444"
SWIPE = f"\x02%B{PAN}^SMITH/ANNA^27082010000000000?\r;{PAN}=27082010000000000?\r\x03"


def test_serial_swipes_stx_etx_and_failed_track(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = MsrConfig(idle_timeout=0.3)  # generous: the two halves must not be split on a busy CI
    with Pty() as port:
        dev = MsrDevice("msr0", lambda: SerialTransport(port.path), config)
        events = Events()
        dev.add_listener(events)
        dev.open()
        dev.claim()
        dev.enable()
        try:
            wait_power(events, dev, PowerState.ONLINE)
            half = len(SWIPE) // 2
            port.send(SWIPE[:half].encode("latin-1"))
            port.send(SWIPE[half:].encode("latin-1"))
            got = events.wait_for(lambda ev: isinstance(ev, DataEvent))
            assert isinstance(got, DataEvent) and isinstance(got.data, CardSwipe)
            assert got.data.number == PAN
            assert got.data.masked_number == "555555******4444"
            mark = events.mark()
            port.send(f"%E?\r;{PAN}=2708?\r".encode())
            got = events.wait_for(lambda ev: isinstance(ev, DataEvent), start=mark)
            assert isinstance(got, DataEvent)
            assert got.data.status(1) is TrackStatus.ERROR
            assert got.data.status(2) is TrackStatus.OK
            mark = events.mark()
            port.send(f";{PAN}=27".encode())  # reader cut off mid-swipe
            err = events.wait_for(lambda ev: isinstance(ev, ErrorEvent), start=mark)
            assert isinstance(err, ErrorEvent) and "no end sentinel" in err.message
        finally:
            dev.close()
    everything = caplog.text + "".join(repr(ev) for ev in events.items)
    assert PAN not in everything


def test_disabled_reader_reports_and_drops_swipe() -> None:
    with Pty() as port:
        dev = MsrDevice("msr0", lambda: SerialTransport(port.path), MsrConfig(idle_timeout=0.03))
        events = Events()
        dev.add_listener(events)
        dev.open()
        try:
            wait_power(events, dev, PowerState.ONLINE)
            port.send(SWIPE.encode("latin-1"))
            err = events.wait_for(lambda ev: isinstance(ev, ErrorEvent))
            assert isinstance(err, ErrorEvent) and "not enabled" in err.message
            assert PAN not in err.message
        finally:
            dev.close()


def test_keyboard_wedge_reader_through_hid_decoder() -> None:
    keys = {";": (e.KEY_SEMICOLON, False), "=": (e.KEY_EQUAL, False), "?": (e.KEY_SLASH, True)}
    keys.update({d: (getattr(e, f"KEY_{d}"), False) for d in "0123456789"})
    decoder, t, out = HidDecoder(), 10.0, []
    for char in f";{PAN}=2708?":
        code, shift = keys[char]
        t += 0.002
        if shift:
            decoder.feed(e.KEY_LEFTSHIFT, 1, t)
        out += decoder.feed(code, 1, t)
        out += decoder.feed(code, 0, t)
        if shift:
            decoder.feed(e.KEY_LEFTSHIFT, 0, t)
    out += decoder.feed(e.KEY_ENTER, 1, t + 0.002)
    [keyed] = out
    assert keyed.from_scanner
    event = swipe_event(keyed.text, "msr-kbd", MsrConfig())
    assert isinstance(event, DataEvent) and event.data.number == PAN
