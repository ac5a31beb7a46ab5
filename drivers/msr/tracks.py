"""ISO/IEC 7813 magnetic stripe tracks, and keeping the card number out of sight.

Track 1 (`%B<PAN>^<NAME>^<YYMM><service><discretionary>?`) and track 2
(`;<PAN>=<YYMM><service><discretionary>?`) carry the same number; a mismatch means a
bad read or a tampered card, so it is an error rather than a guess.  Loyalty cards often
have only a track 2 without `=` (`;1234567890?`); that is accepted.  Readers report a
track they could not read as `%E?` / `;E?` / `+E?`, which is kept per track so the
POS can tell "swipe again" from "this card has no track 1".

The full number lives only in `CardSwipe.number` (and the tracks' `data`); reprs,
exception messages and logs get the masked form.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from drivers.check_digits import luhn_valid
from drivers.masking import mask_pan

_FRAMING = "\x02\x03\r\n\t "  # STX, ETX, CR, LF and blanks readers put around tracks


class SwipeError(ValueError):
    """The swipe could not be parsed; the message names the problem, never the number."""


class TrackStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    ABSENT = "absent"


def mask(number: str) -> str:
    """The one rule of drivers/masking.py: at most 6 first + 4 last, never over half."""
    return mask_pan(number)


@dataclass(frozen=True, repr=False)
class Track:
    status: TrackStatus
    data: str | None = None  # between the sentinels; holds the number, never printed
    number: str | None = None
    name: str | None = None  # track 1 cardholder name
    expiry: str | None = None  # YYMM as on the stripe
    service_code: str | None = None

    def __repr__(self) -> str:
        if self.status is not TrackStatus.OK:
            return f"Track({self.status})"
        number = mask(self.number) if self.number else None
        return f"Track(ok, number={number!r})"


ABSENT = Track(TrackStatus.ABSENT)


@dataclass(frozen=True)
class CardRange:
    """Cards whose number starts with a prefix between `low` and `high` (same length)."""

    low: str
    high: str
    luhn: bool = True

    def __post_init__(self) -> None:
        ok = _is_digits(self.low) and _is_digits(self.high) and len(self.low) == len(self.high)
        if not ok or self.low > self.high:
            raise ValueError(
                f"card range needs two digit prefixes of equal length, low <= high: "
                f"{self.low!r}..{self.high!r}"
            )

    def matches(self, number: str) -> bool:
        head = number[: len(self.low)]
        return len(head) == len(self.low) and self.low <= head <= self.high


@dataclass(frozen=True, repr=False)
class CardSwipe:
    tracks: dict[int, Track] = field(default_factory=dict)  # keys 1, 2, 3
    number: str | None = None

    @property
    def masked_number(self) -> str | None:
        return mask(self.number) if self.number else None

    def status(self, track: int) -> TrackStatus:
        return self.tracks.get(track, ABSENT).status

    def __repr__(self) -> str:
        statuses = ", ".join(f"{n}={self.status(n)}" for n in (1, 2, 3))
        return f"CardSwipe(number={self.masked_number!r}, {statuses})"

    __str__ = __repr__


def _is_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()  # str.isdigit alone accepts "²"


def _digits(value: str, what: str) -> str:
    if not value:
        raise SwipeError(f"{what}: card number is empty")
    for pos, char in enumerate(value):
        if not char.isascii() or not char.isdigit():
            raise SwipeError(f"{what}: card number has a non-digit at position {pos + 1}")
    if len(value) > 19:
        raise SwipeError(f"{what}: card number has {len(value)} digits, at most 19 allowed")
    return value


def _parse_track1(data: str) -> Track:
    if data == "E":
        return Track(TrackStatus.ERROR)
    if not data.startswith("B"):
        raise SwipeError("track 1: format code is not 'B' (only ISO 7813 format B is read)")
    parts = data[1:].split("^")
    if len(parts) < 3:
        raise SwipeError("track 1: expected two '^' separators (number^name^data)")
    number = _digits(parts[0], "track 1")
    rest = "^".join(parts[2:])
    expiry, service = rest[:4], rest[4:7]
    if not (_is_digits(expiry) and len(expiry) == 4) and not expiry.startswith("^"):
        raise SwipeError("track 1: expiry date (YYMM) missing or not digits")
    return Track(
        TrackStatus.OK,
        data=data,
        number=number,
        name=parts[1].strip(),
        expiry=expiry if _is_digits(expiry) else None,
        service_code=service if len(service) == 3 and _is_digits(service) else None,
    )


def _parse_track2(data: str) -> Track:
    if data == "E":
        return Track(TrackStatus.ERROR)
    number_part, sep, rest = data.partition("=")
    number = _digits(number_part, "track 2")
    expiry = service = None
    if sep:
        for pos, char in enumerate(rest):
            if not char.isascii() or not char.isdigit():
                raise SwipeError(f"track 2: non-digit after '=' at position {pos + 1}")
        expiry = rest[:4] if len(rest) >= 4 else None
        service = rest[4:7] if len(rest) >= 7 else None
    return Track(TrackStatus.OK, data=data, number=number, expiry=expiry, service_code=service)


def _parse_track3(data: str) -> Track:
    if data == "E":
        return Track(TrackStatus.ERROR)
    return Track(TrackStatus.OK, data=data)


def split_tracks(text: str) -> dict[int, str]:
    """Raw contents of each track between its start sentinel and `?`."""
    tracks: dict[int, str] = {}
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in _FRAMING:
            pos += 1
            continue
        if char == "%":
            track = 1
        elif char == ";":
            track = 2 if 2 not in tracks else 3
        elif char == "+":
            track = 3
        else:
            raise SwipeError(
                f"unexpected character at position {pos + 1} outside a track "
                f"(tracks start with '%', ';' or '+')"
            )
        end = text.find("?", pos + 1)
        if end < 0:
            raise SwipeError(f"track {track}: no end sentinel '?' (swipe cut short?)")
        if track in tracks:
            raise SwipeError(f"track {track} appears twice in one swipe")
        tracks[track] = text[pos + 1 : end]
        pos = end + 1
    return tracks


def parse_swipe(text: str, *, luhn_ranges: Sequence[CardRange] = ()) -> CardSwipe:
    """Parse the text of one swipe; raises SwipeError naming the problem.

    The number comes from track 2, else track 1; when both were read they must agree.
    A Luhn check is applied when the number falls in one of `luhn_ranges` with `luhn`
    set (bank cards yes, many loyalty ranges no).
    """
    raw = split_tracks(text)
    if not raw:
        raise SwipeError("no track data in the swipe")
    tracks: dict[int, Track] = {}
    if 1 in raw:
        tracks[1] = _parse_track1(raw[1])
    if 2 in raw:
        tracks[2] = _parse_track2(raw[2])
    if 3 in raw:
        tracks[3] = _parse_track3(raw[3])
    t1, t2 = tracks.get(1, ABSENT), tracks.get(2, ABSENT)
    if t1.number and t2.number and t1.number != t2.number:
        raise SwipeError(
            f"track 1 and track 2 card numbers differ ({mask(t1.number)} vs {mask(t2.number)})"
        )
    number = t2.number or t1.number
    if number is not None:
        for card_range in luhn_ranges:
            if card_range.matches(number):
                if card_range.luhn and not luhn_valid(number):
                    raise SwipeError(
                        f"card number {mask(number)} fails the Luhn check required for "
                        f"range {card_range.low}..{card_range.high}"
                    )
                break
    return CardSwipe(tracks=tracks, number=number)
