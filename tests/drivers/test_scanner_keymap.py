"""Keyboard-wedge decoding from key codes, and repair of Russian-layout text."""

from __future__ import annotations

from pathlib import Path

import pytest
from evdev import ecodes as e
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.device import DataEvent, ErrorEvent
from drivers.scanner.keymap import HidDecoder, KeyedText
from drivers.scanner.layout_repair import has_cyrillic, repair_layout
from drivers.scanner.scan import ScanEvent, ScanOptions, make_scan_from_text
from drivers.scanner.wedge import WedgeScanner

Key = tuple[int, int, float]


class Typist:
    """Writes key events the way a scanner (2 ms apart) or a person (150 ms) would."""

    def __init__(self, gap: float = 0.002, t: float = 100.0) -> None:
        self.gap, self.t, self.events = gap, t, list[Key]()

    def press(self, *codes: int) -> Typist:
        """Press the codes in order (modifiers first), release in reverse."""
        for code in codes:
            self.t += self.gap
            self.events.append((code, 1, self.t))
        for code in reversed(codes):
            self.events.append((code, 0, self.t + 0.0005))
        return self

    def keys(self, names: str) -> Typist:
        for name in names.split():
            self.press(*(getattr(e, f"KEY_{part.upper()}") for part in name.split("+")))
        return self


def decode(events: list[Key], **kw: float) -> list[KeyedText]:
    decoder = HidDecoder(**kw)  # type: ignore[arg-type]
    out: list[KeyedText] = []
    for code, value, t in events:
        out += decoder.feed(code, value, t)
    return out


def test_recorded_scanner_decodes_to_its_ean() -> None:
    path = Path(__file__).parent / "corpus" / "hid_scan_5901234123457.events"
    decoder, out = HidDecoder(), list[KeyedText]()
    for line in path.read_text().splitlines():
        _, t, typ, code, value = line.split()
        if int(typ, 16) == e.EV_KEY:
            out += decoder.feed(int(code, 16), int(value, 16), float(t))
    assert [(k.text, k.from_scanner, k.terminated) for k in out] == [("5901234123457", True, True)]


def test_shift_and_capslock() -> None:
    ev = Typist().keys("LEFTSHIFT+A b CAPSLOCK c RIGHTSHIFT+D RIGHTSHIFT+1 CAPSLOCK e ENTER")
    [scan] = decode(ev.events)
    assert scan.text == "AbCd!e"


def test_ctrl_rightbrace_and_alt_numpad_029_are_gs() -> None:
    ev = Typist().keys("RIGHTSHIFT+RIGHTBRACE d 2 LEFTCTRL+RIGHTBRACE 0 1")
    ev.events += [(e.KEY_LEFTALT, 1, ev.t + 0.001)]
    ev.t += 0.001
    ev.keys("KP0 KP2 KP9")
    ev.events += [(e.KEY_LEFTALT, 0, ev.t + 0.001)]
    ev.t += 0.001
    ev.keys("9 1 ENTER")
    [scan] = decode(ev.events)
    assert scan.text == "}d2\x1d01\x1d91"


def test_aim_through_wedge_and_gs_kept() -> None:
    [keyed] = decode(Typist().keys("RIGHTBRACE D 2 LEFTCTRL+RIGHTBRACE 0 1 KPENTER").events)
    scan = make_scan_from_text(keyed.text, "kbd", ScanOptions())
    assert (scan.symbology, scan.text) == ("]d2", "\x1d01")


def test_person_typing_is_not_a_scan() -> None:
    out = decode(Typist(gap=0.15).keys("1 2 3 ENTER").events, gap_threshold=0.03)
    assert [(k.text, k.from_scanner) for k in out] == [("1", False), ("2", False), ("3", False)]


def test_scan_right_after_typing_is_recognised() -> None:
    ev = Typist(gap=0.2).keys("Q W")
    ev.gap = 0.002
    ev.t += 0.5
    ev.keys("4 0 0 6 ENTER")
    out = decode(ev.events)
    assert [(k.text, k.from_scanner) for k in out] == [("q", False), ("w", False), ("4006", True)]
    assert out[-1].max_gap <= 0.03


def test_threshold_is_configurable() -> None:
    events = Typist(gap=0.04).keys("1 2 ENTER").events
    assert decode(events, gap_threshold=0.03)[-1].from_scanner is False
    assert decode(events, gap_threshold=0.05)[0].from_scanner is True


def test_unmapped_keys_reported_not_crashing() -> None:
    [scan] = decode(Typist().keys("F1 1 UP ENTER").events)
    assert scan.text == "1" and scan.unmapped == (e.KEY_F1, e.KEY_UP)


def test_flush_ends_a_scan_without_enter() -> None:
    decoder = HidDecoder(gap_threshold=0.03)
    for code, value, t in Typist().keys("1 2").events:
        decoder.feed(code, value, t)
    assert decoder.flush(100.01) == []
    [partial] = decoder.flush(101.0)
    assert partial.text == "12" and not partial.terminated and partial.from_scanner
    decoder.feed(e.KEY_3, 1, 102.0)
    [lone] = decoder.flush(103.0)
    assert lone.text == "3" and not lone.from_scanner  # one key cannot show its speed


def test_bad_threshold() -> None:
    with pytest.raises(ValueError, match="gap threshold"):
        HidDecoder(gap_threshold=0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(-1, 3), st.floats(0, 1e6)), max_size=60))
def test_any_event_stream_decodes_without_error(events: list[Key]) -> None:
    decoder = HidDecoder()
    for code, value, t in events:
        for keyed in decoder.feed(code, value, t):
            assert isinstance(keyed.text, str)
    decoder.flush(2e6)


# layout repair --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mangled", "meant"),
    [
        ("ъв2\x1d0104600000000000", "]d2\x1d0104600000000000"),
        ("ж1234567890=2512,", ";1234567890=2512?"),
        ("%И4111111111111111:ЩДФТ.ЦШДД:2512", "%B4111111111111111^OLAN/WILL^2512"),
        ("ЪС1ФИС", "}C1ABC"),
        ("ё№;", "`#$"),
    ],
)
def test_russian_layout_repaired(mangled: str, meant: str) -> None:
    assert repair_layout(mangled) == meant
    assert not has_cyrillic(repair_layout(mangled))


def test_text_without_cyrillic_left_alone() -> None:
    assert repair_layout("12.34,5;") == "12.34,5;"
    assert repair_layout("12.34", force=True) == "12/34"


def test_repaired_wedge_scan_gets_symbology() -> None:
    scan = make_scan_from_text("ъв2\x1d01", "kbd", ScanOptions(repair_layout=True))
    assert (scan.symbology, scan.text) == ("]d2", "\x1d01")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_repair_keeps_length(text: str) -> None:
    assert len(repair_layout(text)) == len(text)


# the wedge scanner device ------------------------------------------------------------


def wedge(**kw: object) -> tuple[WedgeScanner, list[object]]:
    dev = WedgeScanner("kbd-scanner", **kw)  # type: ignore[arg-type]
    events: list[object] = []
    dev.add_listener(events.append)
    dev.open()
    dev.claim()
    dev.enable()
    return dev, events


def test_wedge_scanner_emits_scan_event_with_key_time() -> None:
    dev, events = wedge()
    typist = Typist().keys("RIGHTBRACE LEFTSHIFT+E 0 4 0 0 6 ENTER")
    for code, value, t in typist.events:
        dev.feed_key(code, value, t)
    [event] = events
    assert isinstance(event, DataEvent) and isinstance(event.data, ScanEvent)
    assert (event.data.symbology, event.data.text) == ("]E0", "4006")
    assert event.data.timestamp == pytest.approx(typist.t)


def test_wedge_scanner_ignores_typing_and_reports_missing_enter() -> None:
    dev, events = wedge()
    for code, value, t in Typist(gap=0.2).keys("1 2").events + Typist(t=200).keys("7 8").events:
        dev.feed_key(code, value, t)
    dev.poll(300.0)
    messages = [e.message for e in events if isinstance(e, ErrorEvent)]
    assert messages == [
        "1 keys ignored: typed, not scanned",
        "1 keys ignored: typed, not scanned",
        "incomplete scan discarded: 2 keys without Enter, shaped '99'",
    ]
    assert not [e for e in events if isinstance(e, DataEvent)]


def test_wedge_scanner_without_enter_suffix_and_disabled() -> None:
    dev, events = wedge(require_enter=False)
    for code, value, t in Typist().keys("7 8").events:
        dev.feed_key(code, value, t)
    dev.poll(101.0)
    dev.disable()
    for code, value, t in Typist(t=200).keys("9 9 ENTER").events:
        dev.feed_key(code, value, t)
    assert isinstance(events[0], DataEvent) and events[0].data.text == "78"
    assert isinstance(events[1], ErrorEvent) and "not enabled" in events[1].message
