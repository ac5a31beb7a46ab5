"""Field codecs of the command layouts: little-endian integers of 1..8 bytes and cp1251 text.

A request shorter than its layout raises `Truncated`, which the command table answers with
the device's "bad parameters" code instead of crashing the link.
"""

from __future__ import annotations

from datetime import datetime


class Truncated(ValueError):
    """The request ended before a field its layout needs."""


class Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def uint(self, size: int) -> int:
        if self._at + size > len(self._data):
            raise Truncated(f"needs {size} more byte(s) at offset {self._at}")
        value = int.from_bytes(self._data[self._at : self._at + size], "little")
        self._at += size
        return value

    def signed(self, size: int) -> int:
        raw = self.uint(size)
        sign = 1 << (size * 8 - 1)
        return raw - (sign << 1) if raw & sign else raw

    def rest(self) -> bytes:
        data = self._data[self._at :]
        self._at = len(self._data)
        return data

    def remaining(self) -> int:
        return len(self._data) - self._at


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def text(raw: bytes) -> str:
    """Printable text of a string field: cp1251; codes 0..31 (NUL padding too) are ignored,
    as the printer ignores them, and trailing blanks dropped."""
    decoded = raw.decode("cp1251", errors="replace")
    return "".join(ch for ch in decoded if ch >= " ").rstrip()


def encode_text(value: str) -> bytes:
    return value.encode("cp1251", errors="replace")


def date_dmy(moment: datetime) -> bytes:
    return bytes([moment.day, moment.month, moment.year % 100])


def time_hms(moment: datetime) -> bytes:
    return bytes([moment.hour, moment.minute, moment.second])


def datetime_ymdhm(moment: datetime) -> bytes:
    return bytes([moment.year % 100, moment.month, moment.day, moment.hour, moment.minute])
