"""What a scan is once it leaves the driver, whichever way it came in (serial or HID).

`text` keeps GS (0x1D) because GS1 and Chestny ZNAK marking codes need it to find
where variable-length fields end; stripping it would corrupt the code.  Bytes are
decoded as latin-1 (ASCII being its lower half), never with the locale, so the same
scan gives the same text on every register.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from drivers.scanner.aim import split_aim
from drivers.scanner.layout_repair import repair_layout

GS = "\x1d"


@dataclass(frozen=True)
class ScanEvent:
    raw: bytes  # as received, without the suffix
    symbology: str | None  # AIM identifier such as "]E0", None if the scanner sent none
    text: str  # prefix and AIM identifier removed, GS kept
    device: str
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ScanOptions:
    prefix: bytes = b""  # stripped when present (e.g. STX, or a per-scanner tag)
    aim: bool = True  # take a leading AIM identifier off when present
    repair_layout: bool = False  # undo a Russian layout (keyboard-wedge text)


def decode(raw: bytes) -> str:
    return raw.decode("latin-1")


def make_scan(
    raw: bytes, device: str, options: ScanOptions, timestamp: float | None = None
) -> ScanEvent:
    """Build a ScanEvent from one frame's bytes."""
    return _build(raw, decode(raw), device, options, timestamp)


def make_scan_from_text(
    text: str, device: str, options: ScanOptions, timestamp: float | None = None
) -> ScanEvent:
    """Same for keyboard-wedge text; `raw` is then the text's UTF-8 encoding."""
    return _build(text.encode("utf-8"), text, device, options, timestamp)


def _build(
    raw: bytes, text: str, device: str, options: ScanOptions, timestamp: float | None
) -> ScanEvent:
    if options.repair_layout:
        text = repair_layout(text)
    prefix = decode(options.prefix)
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    symbology = None
    if options.aim:
        split = split_aim(text)
        symbology, text = split.symbology, split.data
    return ScanEvent(
        raw=raw,
        symbology=symbology,
        text=text,
        device=device,
        timestamp=time.time() if timestamp is None else timestamp,
    )
