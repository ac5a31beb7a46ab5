"""Cutting a serial byte stream into scans.

A serial scanner sends each scan followed by a suffix it was programmed with (CR, CRLF,
Tab) -- or with none, in which case the silence after a burst ends the scan.  The
operating system hands us whatever has arrived, so one `read()` may hold half a scan,
or several scans.  Rules, in order:

* The suffix ends a scan.  Bytes split across reads are joined first.
* "Glued" scans are several complete scans, each with its own suffix, arriving in a
  single read (the scanner was faster than our reader, e.g. a multi-code scan or a
  backlog after a pause): each becomes its own frame, in order.
* A scan whose suffix was lost is cut off from the next one by the configured prefix
  (a prefix seen in the middle of pending bytes starts a new scan) or by an idle gap.
  Without a prefix or a gap, two scans glued under one suffix cannot be told apart
  (AIM identifiers are not used for this: `]` is legal inside Code 128 data) and are
  delivered as one.
* With a suffix configured, bytes left pending for longer than `idle_timeout` are an
  incomplete scan (`Frame.terminated` is False); without a suffix that is the normal
  end of a scan.
"""

from __future__ import annotations

from dataclasses import dataclass

SUFFIXES: dict[str, bytes | None] = {
    "CR": b"\r",
    "CRLF": b"\r\n",
    "LF": b"\n",
    "TAB": b"\t",
    "ETX": b"\x03",
    "NONE": None,
}


def suffix_from_name(name: str) -> bytes | None:
    """Config spells suffixes by name ("CR", "CRLF", "TAB", "NONE"); bytes are error-prone."""
    try:
        return SUFFIXES[name.upper()]
    except KeyError:
        raise ValueError(
            f"unknown scanner suffix {name!r}; expected one of {', '.join(SUFFIXES)}"
        ) from None


@dataclass(frozen=True)
class Frame:
    data: bytes  # without the suffix; the prefix is still there
    terminated: bool  # ended by the suffix (False: cut by idle gap or by a new prefix)
    started: float  # monotonic time of the first byte


class Framer:
    def __init__(
        self,
        suffix: bytes | None = b"\r",
        *,
        prefix: bytes = b"",
        idle_timeout: float = 0.05,
        max_length: int = 8192,
    ) -> None:
        if suffix == b"":
            raise ValueError("scanner suffix must be None (idle framing) or non-empty bytes")
        if idle_timeout <= 0:
            raise ValueError(f"scanner idle timeout must be positive, got {idle_timeout!r}")
        if max_length < 1:
            raise ValueError(f"scanner max_length must be positive, got {max_length!r}")
        self.suffix = suffix
        self.prefix = prefix
        self.idle_timeout = idle_timeout
        self.max_length = max_length
        self._buf = bytearray()
        self._started = 0.0
        self._last = 0.0

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """Add bytes read at monotonic time `now`; return the scans they completed."""
        frames: list[Frame] = []
        if not data:
            return frames
        if self._buf and now - self._last > self.idle_timeout:
            frames.extend(self._cut(terminated=self.suffix is None))
        if not self._buf:
            self._started = now
        self._last = now
        self._buf += data
        if self.suffix is not None:
            while (end := self._buf.find(self.suffix)) >= 0:
                chunk = bytes(self._buf[:end])
                del self._buf[: end + len(self.suffix)]
                frames.extend(self._split_on_prefix(chunk, terminated=True))
                self._started = now
        if len(self._buf) > self.max_length:  # a stuck scanner must not eat all memory
            frames.extend(self._cut(terminated=False))
        return frames

    def reset(self) -> bytes:
        """Drop pending bytes (the device went away); returns what was dropped."""
        lost = bytes(self._buf)
        self._buf.clear()
        return lost

    def poll(self, now: float) -> list[Frame]:
        """Called when nothing arrived: pending bytes older than the idle timeout end."""
        if self._buf and now - self._last >= self.idle_timeout:
            return self._cut(terminated=self.suffix is None)
        return []

    def _cut(self, *, terminated: bool) -> list[Frame]:
        chunk = bytes(self._buf)
        self._buf.clear()
        return self._split_on_prefix(chunk, terminated=terminated)

    def _split_on_prefix(self, chunk: bytes, *, terminated: bool) -> list[Frame]:
        if self.suffix is not None and self.suffix == b"\r" and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # a CRLF scanner on a CR setting: the LF leads the next scan
        if not chunk:
            return []
        if not self.prefix or chunk.find(self.prefix, len(self.prefix)) < 0:
            return [Frame(chunk, terminated, self._started)]
        parts = chunk.split(self.prefix)
        pieces = [self.prefix + p for p in parts[1:]]
        if parts[0]:
            pieces.insert(0, parts[0])
        frames = [Frame(p, False, self._started) for p in pieces[:-1]]
        frames.append(Frame(pieces[-1], terminated, self._started))
        return frames
