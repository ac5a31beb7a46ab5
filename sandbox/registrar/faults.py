"""Faults a test can inject into the emulated registrar, and the book that hands them out.

Link faults act on the next frame(s) or answer(s) and are used up; command faults answer
a given command with an error code a number of times; device faults (paper out, cover
open, shift over 24 h, FN full or missing) hold until cleared, as the real conditions do
until someone loads paper or closes the shift.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    NAK = "nak"  # the next frame(s) get NAK and are not executed
    BAD_LRC = "bad_lrc"  # the next answer(s) go out with a wrong LRC (the good one stays pending)
    SILENCE = "silence"  # the next `count` frames get nothing at all and are not executed
    DROP_ANSWER = "drop_answer"  # frame executed and ACKed, answer withheld but pending
    ERROR = "error"  # `command` answers error `code`, `count` times (0 = until cleared)
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    SHIFT_OVER_24H = "shift_over_24h"
    FN_FULL = "fn_full"
    FN_MISSING = "fn_missing"


LINK_KINDS = frozenset({FaultKind.NAK, FaultKind.BAD_LRC, FaultKind.SILENCE, FaultKind.DROP_ANSWER})
DEVICE_KINDS = frozenset(
    {
        FaultKind.PAPER_OUT,
        FaultKind.COVER_OPEN,
        FaultKind.SHIFT_OVER_24H,
        FaultKind.FN_FULL,
        FaultKind.FN_MISSING,
    }
)


class FaultSpecError(ValueError):
    """A fault description that names no fault or lacks what its kind needs."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    count: int = 1
    command: int | None = None
    code: int | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise FaultSpecError(f"count must be >= 0, got {self.count}")
        if self.kind is FaultKind.ERROR:
            if self.command is None or not 0 <= self.command <= 0xFFFF:
                raise FaultSpecError("an error fault needs `command` (0x00..0xFFFF)")
            if self.code is None or not 1 <= self.code <= 0xFF:
                raise FaultSpecError("an error fault needs `code` (1..255)")

    @classmethod
    def nak(cls, count: int = 1) -> Fault:
        return cls(FaultKind.NAK, count)

    @classmethod
    def bad_lrc(cls, count: int = 1) -> Fault:
        return cls(FaultKind.BAD_LRC, count)

    @classmethod
    def silence(cls, frames: int = 1) -> Fault:
        return cls(FaultKind.SILENCE, frames)

    @classmethod
    def drop_answer(cls, count: int = 1) -> Fault:
        return cls(FaultKind.DROP_ANSWER, count)

    @classmethod
    def error(cls, command: int, code: int, count: int = 1) -> Fault:
        return cls(FaultKind.ERROR, count, command, code)

    @classmethod
    def paper_out(cls) -> Fault:
        return cls(FaultKind.PAPER_OUT)

    @classmethod
    def cover_open(cls) -> Fault:
        return cls(FaultKind.COVER_OPEN)

    @classmethod
    def shift_over_24h(cls) -> Fault:
        return cls(FaultKind.SHIFT_OVER_24H)

    @classmethod
    def fn_full(cls) -> Fault:
        return cls(FaultKind.FN_FULL)

    @classmethod
    def fn_missing(cls) -> Fault:
        return cls(FaultKind.FN_MISSING)

    @classmethod
    def from_json(cls, spec: Any) -> Fault:
        """`{"kind": "error", "command": "0x80", "code": 107, "count": 1}` and the like."""
        if not isinstance(spec, dict):
            raise FaultSpecError("a fault is a JSON object with a `kind`")
        try:
            kind = FaultKind(str(spec.get("kind")))
        except ValueError:
            names = ", ".join(k.value for k in FaultKind)
            raise FaultSpecError(
                f"unknown fault kind {spec.get('kind')!r}; one of: {names}"
            ) from None
        return cls(
            kind,
            _number(spec, "count", 1),
            _optional_number(spec, "command"),
            _optional_number(spec, "code"),
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "count": self.count}
        if self.command is not None:
            out["command"] = f"0x{self.command:02X}"
        if self.code is not None:
            out["code"] = self.code
        return out


def _optional_number(spec: dict[str, Any], key: str) -> int | None:
    return None if spec.get(key) is None else _number(spec, key, 0)


def _number(spec: dict[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool):
        raise FaultSpecError(f"`{key}` must be a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise FaultSpecError(f"`{key}` must be a number (decimal or 0x..), got {value!r}")


class FaultBook:
    """Pending link and command faults; the link and the command table take what applies.

    Device faults are not kept here: they are conditions of the device's state (paper,
    cover, shift, FN), set and lifted by the emulator.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted: list[list[Any]] = []  # [fault, remaining]; remaining 0 = forever (errors)

    def add(self, fault: Fault) -> None:
        if fault.kind in DEVICE_KINDS:
            raise FaultSpecError(f"{fault.kind.value} is a device condition, not a link fault")
        with self._lock:
            if fault.count or fault.kind is FaultKind.ERROR:
                self._counted.append([fault, fault.count])

    def clear(self) -> None:
        with self._lock:
            self._counted.clear()

    def take(self, kind: FaultKind) -> bool:
        """Use up one occurrence of a link fault, if one is pending."""
        with self._lock:
            for entry in self._counted:
                if entry[0].kind is kind:
                    self._use(entry)
                    return True
        return False

    def error_for(self, command: int) -> int | None:
        with self._lock:
            for entry in self._counted:
                fault: Fault = entry[0]
                if fault.kind is FaultKind.ERROR and fault.command == command:
                    self._use(entry)
                    return fault.code
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            out = []
            for fault, remaining in self._counted:
                item = fault.as_json()
                item["remaining"] = remaining
                out.append(item)
            return out

    def _use(self, entry: list[Any]) -> None:
        if entry[1] == 0:  # an error fault with count 0 holds until cleared
            return
        entry[1] -= 1
        if entry[1] == 0:
            self._counted.remove(entry)
