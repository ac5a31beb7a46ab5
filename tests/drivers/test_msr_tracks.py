"""Track parsing, masking, Luhn per range, and the card number never leaking."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.device import DataEvent, ErrorEvent
from drivers.msr.device import MsrConfig, swipe_event
from drivers.msr.tracks import CardRange, CardSwipe, SwipeError, TrackStatus, mask, parse_swipe

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "corpus" / "tracks.json").read_text("utf-8")
)["swipes"]
GOOD = [c for c in CORPUS if "error" not in c]
BAD = [c for c in CORPUS if "error" in c]
PAN = "4111111111111111"


@pytest.mark.parametrize("case", GOOD, ids=lambda c: repr(c["swipe"])[:30])
def test_corpus_swipes(case: dict[str, Any]) -> None:
    swipe = parse_swipe(case["swipe"])
    assert swipe.number == case["number"]
    assert swipe.masked_number == case["masked"]
    assert [swipe.status(n).value for n in (1, 2, 3)] == case["status"]
    if case["number"]:
        assert case["number"] not in repr(swipe)
        assert case["number"] not in str(swipe)
        assert case["number"] not in repr(swipe.tracks)


@pytest.mark.parametrize("case", BAD, ids=lambda c: repr(c["swipe"])[:30])
def test_corpus_errors_name_the_problem_not_the_number(case: dict[str, Any]) -> None:
    with pytest.raises(SwipeError, match=case["error"]) as info:
        parse_swipe(case["swipe"])
    for digits in ("4111111111111111", "4000056655665556", "41111111111A1111"):
        assert digits not in str(info.value)


def test_track_fields() -> None:
    swipe = parse_swipe(GOOD[0]["swipe"])
    t1, t2 = swipe.tracks[1], swipe.tracks[2]
    assert (t1.name, t1.expiry, t1.service_code) == ("DOE/JOHN", "2512", "101")
    assert (t2.expiry, t2.service_code) == ("2512", "101")
    assert "DOE" not in repr(swipe)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("4111111111111111", "4111********1111"),  # 8 of 16 shown: never more than half
        ("4111111111111111111", "41111**********1111"),
        ("1234567890123", "12*******0123"),  # 13 digits: 6 shown, not 10
        ("12345678901234567890", "123456**********7890"),  # 6 + 4 at most
        ("123456789012", "12******9012"),
        ("1234567", "****567"),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


def test_luhn_checked_only_inside_configured_range() -> None:
    bank = [CardRange("40", "49", luhn=True), CardRange("2775", "2775", luhn=False)]
    assert parse_swipe(f";{PAN}=2512?", luhn_ranges=bank).number == PAN
    with pytest.raises(SwipeError, match=r"4111\*+1112 fails the Luhn check.*40..49") as info:
        parse_swipe(";4111111111111112=2512?", luhn_ranges=bank)
    assert "4111111111111112" not in str(info.value)
    assert parse_swipe(";2775000012346?", luhn_ranges=bank).number == "2775000012346"
    assert parse_swipe(";5111111111111112?", luhn_ranges=bank).number == "5111111111111112"


@pytest.mark.parametrize(("low", "high"), [("4", "49"), ("5", "4"), ("4a", "4b"), ("", "")])
def test_bad_card_range(low: str, high: str) -> None:
    with pytest.raises(ValueError, match="card range"):
        CardRange(low, high)


def test_russian_layout_swipe_repaired() -> None:
    event = swipe_event("ж4111111111111111=2512101,", "msr0", MsrConfig())
    assert isinstance(event, DataEvent) and isinstance(event.data, CardSwipe)
    assert event.data.number == PAN


def test_swipe_event_for_unreadable_card_says_per_track() -> None:
    event = swipe_event("%E?;E?", "msr0", MsrConfig())
    assert isinstance(event, ErrorEvent)
    assert "track 1: error, track 2: error, track 3: absent" in event.message


def test_nothing_logged_or_raised_contains_the_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    events = [
        swipe_event(f"%B{PAN}^DOE/JOHN^2512101?;{PAN}=2512101?", "msr0", MsrConfig()),
        swipe_event(f"%B{PAN}^DOE/JOHN^2512101?;4000056655665556=2612?", "msr0", MsrConfig()),
        swipe_event(f";{PAN}=25X?", "msr0", MsrConfig()),
        swipe_event(f";{PAN}", "msr0", MsrConfig()),
    ]
    assert isinstance(events[0], DataEvent)
    assert all(isinstance(e, ErrorEvent) for e in events[1:])
    text = caplog.text + "".join(repr(e) for e in events)
    assert PAN not in text and "4000056655665556" not in text
    assert "4111********1111" in text


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("%;+?^=BE0123456789\x02\x03\r\n /A²"), max_size=80))
def test_any_track_like_text_parses_or_raises_swipe_error(text: str) -> None:
    try:
        swipe = parse_swipe(text)
    except SwipeError:
        return
    for n in (1, 2, 3):
        assert swipe.status(n) in TrackStatus
    if swipe.number:
        assert swipe.number.isascii() and swipe.number.isdigit()
        assert swipe.number not in repr(swipe) or len(swipe.number) < 4


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_swipe_error(text: str) -> None:
    try:
        parse_swipe(text)
    except SwipeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_from_a_reader_give_an_event(data: bytes) -> None:
    event = swipe_event(data.decode("latin-1"), "msr0", MsrConfig())
    assert isinstance(event, DataEvent | ErrorEvent)
