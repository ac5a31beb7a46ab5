"""MsrDevice on a real pty, and a keyboard-wedge reader's keys through the HID decoder."""

from __future__ import annotations

import logging

import pytest
from evdev import ecodes as e

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.msr.device import MsrConfig, MsrDevice, swipe_event
from drivers.msr.tracks import CardSwipe, TrackStatus
from drivers.msr.wedge import WedgeCardReader
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
            assert got.data.masked_number == "5555********4444"
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


KEYS = {";": (e.KEY_SEMICOLON, False), "=": (e.KEY_EQUAL, False), "?": (e.KEY_SLASH, True)}
KEYS.update({d: (getattr(e, f"KEY_{d}"), False) for d in "0123456789"})
KEYS.update({"%": (e.KEY_5, True), "^": (e.KEY_6, True), "/": (e.KEY_SLASH, False)})
KEYS.update({c: (getattr(e, f"KEY_{c}"), True) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
KEYS["\r"] = (e.KEY_ENTER, False)


def typed(text: str, t: float) -> list[tuple[int, int, float]]:
    """Key events a wedge reader sends for `text`, 2 ms per key, from time `t`."""
    out = []
    for char in text:
        code, shift = KEYS[char]
        t += 0.002
        if shift:
            out.append((e.KEY_LEFTSHIFT, 1, t))
        out += [(code, 1, t), (code, 0, t)]
        if shift:
            out.append((e.KEY_LEFTSHIFT, 0, t))
    return out


def test_keyboard_wedge_reader_through_hid_decoder() -> None:
    decoder, out = HidDecoder(), []
    for code, value, t in typed(f";{PAN}=2708?\r", 10.0):
        out += decoder.feed(code, value, t)
    [keyed] = out
    assert keyed.from_scanner
    event = swipe_event(keyed.text, "msr-kbd", MsrConfig())
    assert isinstance(event, DataEvent) and event.data.number == PAN


def test_wedge_card_reader_joins_tracks_sent_with_enter_each() -> None:
    dev = WedgeCardReader("msr-kbd")
    events = Events()
    dev.add_listener(events)
    dev.open()
    dev.claim()
    dev.enable()
    swipe = f"%B{PAN}^SMITH/ANNA^2708201?\r;{PAN}=2708201?\r"
    for code, value, t in typed(swipe, 10.0):
        dev.feed_key(code, value, t)
    assert events.items == []  # the reader may still send track 3
    dev.poll(11.0)
    [got] = events.items
    assert isinstance(got, DataEvent) and isinstance(got.data, CardSwipe)
    assert got.data.number == PAN and got.data.status(1) is TrackStatus.OK
    for code, value, t in typed(";E?\r", 20.0) + typed(";1234?\r", 21.0):
        dev.feed_key(code, value, t)  # two swipes a second apart: two results
    dev.poll(22.0)
    assert isinstance(events.items[1], ErrorEvent) and "swipe again" in events.items[1].message
    assert isinstance(events.items[2], DataEvent) and events.items[2].data.number == "1234"
