"""Printer status from DLE EOT n (n = 1..4), decoded here rather than by python-escpos.

python-escpos's `is_online()`/`paper_status()` turn "no answer" into "offline" or "paper
adequate"; a till must not print on a guess, so every flag here is three-valued and a
missing, late or malformed reply gives UNKNOWN.  Bit layouts: Epson ESC/POS reference,
"DLE EOT".  Every reply byte has the fixed pattern 0xx1xx10; a byte without it is not a
status reply (an ASB frame, line noise, a printer speaking another dialect) and is ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from drivers.device import Flag

DLE_EOT = b"\x10\x04"
FIXED_MASK = 0x93  # bits 0, 1, 4, 7
FIXED_BITS = 0x12  # bit 1 and bit 4 set, bits 0 and 7 clear


class Query(enum.IntEnum):
    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    ROLL_PAPER = 4

    @property
    def command(self) -> bytes:
        return DLE_EOT + bytes([self.value])


def is_status_byte(value: int) -> bool:
    return 0 <= value <= 0xFF and value & FIXED_MASK == FIXED_BITS


def _bit(reply: int | None, mask: int) -> Flag:
    if reply is None:
        return Flag.UNKNOWN
    return Flag.of(reply & mask != 0)


def _pair(reply: int | None, mask: int) -> Flag:
    """Sensors reported on two bits at once: both set or both clear, else the reply is suspect."""
    if reply is None:
        return Flag.UNKNOWN
    bits = reply & mask
    if bits == mask:
        return Flag.TRUE
    if bits == 0:
        return Flag.FALSE
    return Flag.UNKNOWN


def _not(flag: Flag) -> Flag:
    return flag if flag is Flag.UNKNOWN else Flag.of(flag is Flag.FALSE)


@dataclass(frozen=True)
class PrinterStatus:
    online: Flag = Flag.UNKNOWN
    cover_open: Flag = Flag.UNKNOWN
    paper_empty: Flag = Flag.UNKNOWN
    paper_near_end: Flag = Flag.UNKNOWN
    cutter_error: Flag = Flag.UNKNOWN
    recoverable_error: Flag = Flag.UNKNOWN
    unrecoverable_error: Flag = Flag.UNKNOWN
    auto_recoverable_error: Flag = Flag.UNKNOWN
    error: Flag = Flag.UNKNOWN
    drawer_pin3_high: Flag = Flag.UNKNOWN

    @property
    def answered(self) -> bool:
        return any(getattr(self, f.name) is not Flag.UNKNOWN for f in fields(self))

    def blocking_reason(self) -> str | None:
        """Why a job must wait, or None; only a *known* fault blocks, UNKNOWN never does."""
        if self.paper_empty is Flag.TRUE:
            return "paper empty"
        if self.cover_open is Flag.TRUE:
            return "cover open"
        if self.online is Flag.FALSE:
            return "printer offline"
        return None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).to_json() for f in fields(self)}


UNKNOWN_STATUS = PrinterStatus()


def decode(replies: Mapping[int, int | None]) -> PrinterStatus:
    """Decode the replies to DLE EOT 1..4 (missing or malformed ones count as unanswered)."""
    clean = {n: (r if r is not None and is_status_byte(r) else None) for n, r in replies.items()}
    printer = clean.get(Query.PRINTER)
    cause = clean.get(Query.OFFLINE_CAUSE)
    errors = clean.get(Query.ERROR_CAUSE)
    paper = clean.get(Query.ROLL_PAPER)

    paper_empty = _pair(paper, 0x60)
    if paper_empty is Flag.UNKNOWN and cause is not None and cause & 0x20:
        paper_empty = Flag.TRUE  # "printing stopped by paper end" is proof on its own
    return PrinterStatus(
        online=_not(_bit(printer, 0x08)),
        drawer_pin3_high=_bit(printer, 0x04),
        cover_open=_bit(cause, 0x04),
        error=_bit(cause, 0x40),
        paper_empty=paper_empty,
        paper_near_end=_pair(paper, 0x0C),
        recoverable_error=_bit(errors, 0x04),
        cutter_error=_bit(errors, 0x08),
        unrecoverable_error=_bit(errors, 0x20),
        auto_recoverable_error=_bit(errors, 0x40),
    )
