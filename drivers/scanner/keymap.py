"""Turning a keyboard-wedge scanner's key events back into the scanned text.

We read key *codes* from evdev, below any keyboard layout, and apply our own US table,
so the result does not depend on what layout the register's desktop has active.
Scanners send GS (needed by GS1 and marking codes) either as Ctrl+] or as Alt+0,2,9 on
the numeric keypad; both are decoded.  Enter ends a scan.

A person typing on the same keyboard also produces key events.  Scanners type fast
and evenly (a few ms per key); people need 60 ms or more between keys.  Every gap
between two key presses longer than `gap_threshold` ends what was pending as *typed*
text, so a scan that follows typing is still recognised by itself.

Events are `(code, value, timestamp)`: `code` a Linux KEY_* code, `value` 1 press,
0 release, 2 autorepeat, `timestamp` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evdev import ecodes as e

_PLAIN: dict[int, tuple[str, str]] = {
    **{
        getattr(e, f"KEY_{c.upper()}"): (c, c.upper())
        for c in "abcdefghijklmnopqrstuvwxyz"
    },
    e.KEY_1: ("1", "!"), e.KEY_2: ("2", "@"), e.KEY_3: ("3", "#"), e.KEY_4: ("4", "$"),
    e.KEY_5: ("5", "%"), e.KEY_6: ("6", "^"), e.KEY_7: ("7", "&"), e.KEY_8: ("8", "*"),
    e.KEY_9: ("9", "("), e.KEY_0: ("0", ")"),
    e.KEY_MINUS: ("-", "_"), e.KEY_EQUAL: ("=", "+"), e.KEY_LEFTBRACE: ("[", "{"),
    e.KEY_RIGHTBRACE: ("]", "}"), e.KEY_SEMICOLON: (";", ":"), e.KEY_APOSTROPHE: ("'", '"'),
    e.KEY_GRAVE: ("`", "~"), e.KEY_BACKSLASH: ("\\", "|"), e.KEY_COMMA: (",", "<"),
    e.KEY_DOT: (".", ">"), e.KEY_SLASH: ("/", "?"), e.KEY_SPACE: (" ", " "),
    e.KEY_TAB: ("\t", "\t"),
    e.KEY_KPASTERISK: ("*", "*"), e.KEY_KPMINUS: ("-", "-"), e.KEY_KPPLUS: ("+", "+"),
    e.KEY_KPSLASH: ("/", "/"), e.KEY_KPDOT: (".", "."),
}  # fmt: skip

_KEYPAD_DIGITS: dict[int, str] = {
    e.KEY_KP0: "0", e.KEY_KP1: "1", e.KEY_KP2: "2", e.KEY_KP3: "3", e.KEY_KP4: "4",
    e.KEY_KP5: "5", e.KEY_KP6: "6", e.KEY_KP7: "7", e.KEY_KP8: "8", e.KEY_KP9: "9",
}  # fmt: skip

_SHIFT = {e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT}
_CTRL = {e.KEY_LEFTCTRL, e.KEY_RIGHTCTRL}
_ALT = {e.KEY_LEFTALT, e.KEY_RIGHTALT}
_ENTER = {e.KEY_ENTER, e.KEY_KPENTER}


@dataclass(frozen=True)
class KeyedText:
    """A run of keys: at scanner speed (`from_scanner`) or typed by a person.

    `from_scanner` needs at least two key presses (Enter included) all closer than the
    threshold; a lone key cannot show how fast it was typed.
    """

    text: str
    from_scanner: bool
    terminated: bool  # ended by Enter
    started: float
    ended: float
    max_gap: float  # longest gap between two key presses inside the run
    unmapped: tuple[int, ...] = ()  # key codes we have no character for (F1, arrows...)


@dataclass
class _Run:
    chars: list[str] = field(default_factory=list)
    started: float = 0.0
    last: float = 0.0
    max_gap: float = 0.0
    unmapped: list[int] = field(default_factory=list)


class HidDecoder:
    def __init__(self, *, gap_threshold: float = 0.03, min_length: int = 1) -> None:
        if gap_threshold <= 0:
            raise ValueError(f"HID gap threshold must be positive, got {gap_threshold!r}")
        self.gap_threshold = gap_threshold
        self.min_length = min_length
        self._held: set[int] = set()
        self._caps = False
        self._alt_digits = ""
        self._run: _Run | None = None
        self._last_press: float | None = None

    def feed(self, code: int, value: int, timestamp: float) -> list[KeyedText]:
        out: list[KeyedText] = []
        if value == 0:
            self._held.discard(code)
            if code in _ALT and not (self._held & _ALT):
                self._finish_alt_code(timestamp)
            return out
        if value not in (1, 2):
            return out
        if code in _SHIFT | _CTRL | _ALT:
            self._held.add(code)
            return out
        if code == e.KEY_CAPSLOCK:
            if value == 1:
                self._caps = not self._caps
            return out
        # a real key press: measure the gap first, it decides who is typing
        if self._last_press is not None and self._run is not None:
            gap = timestamp - self._last_press
            if gap > self.gap_threshold:
                out.extend(self._close(terminated=False, now=self._last_press))
            elif self._run is not None:
                self._run.max_gap = max(self._run.max_gap, gap)
        self._last_press = timestamp
        if code in _ENTER:
            if self._run is not None:
                out.extend(self._close(terminated=True, now=timestamp))
            return out
        run = self._run
        if run is None:
            run = self._run = _Run(started=timestamp)
        run.last = timestamp
        if self._held & _ALT and code in _KEYPAD_DIGITS:
            self._alt_digits += _KEYPAD_DIGITS[code]
            return out
        char = self._char(code)
        if char is None:
            run.unmapped.append(code)
        else:
            run.chars.append(char)
        return out

    def flush(self, now: float) -> list[KeyedText]:
        """End a pending run if its last key is older than the threshold (no Enter came)."""
        if self._run is not None and now - self._run.last > self.gap_threshold:
            return self._close(terminated=False, now=self._run.last)
        return []

    def _char(self, code: int) -> str | None:
        if code in _KEYPAD_DIGITS:
            return _KEYPAD_DIGITS[code]  # NumLock is on for scanners; we do not track it
        pair = _PLAIN.get(code)
        if pair is None:
            return None
        shift = bool(self._held & _SHIFT)
        if pair[0].isalpha() and self._caps:
            shift = not shift
        char = pair[1] if shift else pair[0]
        if self._held & _CTRL:
            upper = pair[0].upper() if pair[0].isalpha() else pair[0]
            if "@" <= upper <= "_":  # Ctrl+] is GS, Ctrl+A is SOH, as on a terminal
                return chr(ord(upper) - 0x40)
            return None
        return char

    def _finish_alt_code(self, timestamp: float) -> None:
        digits, self._alt_digits = self._alt_digits, ""
        if not digits or self._run is None:
            return
        # Alt+0,2,9 -> byte 29 (GS).  Scanners use Alt codes for control characters;
        # we take the number as a byte value and do not emulate code pages above 127.
        self._run.chars.append(chr(int(digits) % 256))
        self._run.last = timestamp

    def _close(self, *, terminated: bool, now: float) -> list[KeyedText]:
        run, self._run = self._run, None
        self._alt_digits = ""
        if run is None or (not run.chars and not run.unmapped):
            return []
        text = "".join(run.chars)
        # speed needs two presses to show; Enter counts as one
        presses = len(run.chars) + len(run.unmapped) + (1 if terminated else 0)
        from_scanner = presses >= 2 and len(text) >= self.min_length
        return [
            KeyedText(
                text=text,
                from_scanner=from_scanner,
                terminated=terminated,
                started=run.started,
                ended=now,
                max_gap=run.max_gap,
                unmapped=tuple(run.unmapped),
            )
        ]
