"""One masking rule for card numbers, wherever text leaves a driver or the service.

PCI DSS allows at most the first 6 and the last 4 digits of a card number to be shown.
That is not enough on its own for short cards: a 13-digit number showing 6 + 4 digits
leaves 3 hidden, and with the Luhn check digit only ~100 candidates.  So we also never
show more than half of the digits:

    shown = min(10, len // 2); last = min(4, shown); first = shown - last

The last digits go first because they are what a cashier and a customer compare with
the card; the leading ones (range, issuer) get what is left.  13 digits: `27*******0012`,
16: `4111********1111`, 19: `41111**********1111`, 8: `****5678`.

`mask_text` finds card numbers inside free text (log lines, error messages, device
bytes): any Luhn-valid run of 13-19 digits, written plainly or in groups split by single
spaces or dashes (`4111 1111 1111 1111`).  A run of 20 or more plain digits is not a
card number and is left alone.  Text without a long digit run costs one regex search.

A UUID is left whole.  Its hex groups hold a Luhn-valid 13-19 digit window by chance
about once in 340 (`910acfc1-0709-4832-8242-...`), and cheque and request ids are UUIDs:
masked, a POS could no longer match an event to its cheque nor a technician grep a log
for it.
Only the RFC 4122 shape counts (8-4-4-4-12 hex, version and variant nibbles, no letter
or digit glued on), and no device or processing writes a card number that way.
"""

from __future__ import annotations

import re
from typing import Any

_MIN, _MAX = 13, 19
# digits with spaces and dashes between them, 13+ characters: a cheap pattern (no group,
# no backtracking); `_mask_run` then cuts it where two separators follow each other
_CANDIDATE = re.compile(r"[0-9][0-9 -]{11,}[0-9]")
_LOOSE = re.compile(r"([ -]{2,})")
_SEPARATOR = re.compile(r"[ -]")
_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, minus 9 when above 9
_HEX = "[0-9A-Fa-f]"
_UUID = re.compile(
    rf"(?<![0-9A-Za-z]){_HEX}{{8}}-{_HEX}{{4}}-[1-8]{_HEX}{{3}}-[89ABab]{_HEX}{{3}}-{_HEX}{{12}}"
    r"(?![0-9A-Za-z])"
)


def mask_pan(number: str) -> str:
    """`number` with all but at most min(6 first + 4 last, half) of its characters as `*`."""
    n = len(number)
    shown = min(10, n // 2)
    last = min(4, shown)
    first = shown - last
    return number[:first] + "*" * (n - shown) + (number[n - last :] if last else "")


def luhn_valid(digits: str) -> bool:
    """Luhn check of ASCII digits; byte sums keep it in C (it runs on log lines)."""
    rev = digits[::-1]
    total = sum(rev[0::2].encode()) + sum(rev[1::2].translate(_DOUBLED).encode())
    return (total - 48 * len(digits)) % 10 == 0


def mask_text(text: str) -> str:
    """`text` with every Luhn-valid run of 13-19 digits masked by `mask_pan`."""
    if len(text) < _MIN:
        return text
    masked = _CANDIDATE.sub(_mask_run, text)
    if masked == text or _UUID.search(text) is None:
        return masked
    return _masked_around_uuids(text)


def _masked_around_uuids(text: str) -> str:
    """`text` masked piece by piece between its UUIDs, which are kept as they are."""
    out, pos = [], 0
    for match in _UUID.finditer(text):
        out.append(_CANDIDATE.sub(_mask_run, text[pos : match.start()]))
        out.append(match.group())
        pos = match.end()
    out.append(_CANDIDATE.sub(_mask_run, text[pos:]))
    return "".join(out)


def mask_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with `mask_text` applied to every string."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if run.isdigit():  # the common case: one plain run
        if len(run) <= _MAX and luhn_valid(run):
            return mask_pan(run)
        return run
    out = []
    for piece in _LOOSE.split(run):  # digit groups with single separators, and the rest
        if piece[:1].isdigit() and len(piece) >= _MIN:
            piece = _mask_groups(_SEPARATOR.split(piece), piece)
        out.append(piece)
    return "".join(out)


def _mask_groups(groups: list[str], run: str) -> str:
    """Groups of digits: mask every Luhn-valid window of whole groups with 13-19 digits.

    Windows are taken on group boundaries only, so `4111 1111 1111 1111 2` still finds
    the card in its first four groups.  The longest window starting at a group wins.
    """
    digits = "".join(groups)
    starts, pos = [], 0
    for g in groups:
        starts.append(pos)
        pos += len(g)
    starts.append(pos)
    hidden = [False] * len(digits)
    masked_any = False
    i = 0
    while i < len(groups):
        found = _window(groups, starts, digits, i)
        if found is None:
            i += 1
            continue
        for k, char in enumerate(mask_pan(digits[starts[i] : starts[found]])):
            if char == "*":
                hidden[starts[i] + k] = True
        masked_any = True
        i = found  # windows never overlap: the next one starts after this card
    if not masked_any:
        return run
    out, d = [], 0
    for char in run:
        if char.isdigit():
            out.append("*" if hidden[d] else char)
            d += 1
        else:
            out.append(char)
    return "".join(out)


def _window(groups: list[str], starts: list[int], digits: str, i: int) -> int | None:
    """End group (exclusive) of the longest Luhn-valid 13-19 digit window from group `i`."""
    if len(groups[i]) > _MAX:
        return None
    for j in range(len(groups), i, -1):
        count = starts[j] - starts[i]
        if count < _MIN:
            return None
        if count <= _MAX and luhn_valid(digits[starts[i] : starts[j]]):
            return j
    return None


def shape(data: bytes | str, limit: int = 64) -> str:
    """What raw device input looked like, without its content: for error messages.

    Digits become `9`, letters `A`, other printable ASCII stays (framing such as `;`, `=`,
    `?`, `]`), anything else is shown as an escape.  A technician can still see a wrong
    suffix or a cut-off track; the card number, name and expiry are gone.
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    out = []
    for char in text[:limit]:
        if char.isdigit():
            out.append("9")
        elif char.isalpha():
            out.append("A")
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(repr(char)[1:-1] if ord(char) < 0x100 else "?")
    if len(text) > limit:
        out.append("...")
    return "".join(out)
