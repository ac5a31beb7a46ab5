"""Upload progress on stderr: a redrawn bar on a terminal, plain lines in a log.

A technician watching a 100,000-item push on the register's console wants a bar; the
same command run from cron or a service writes to a journal, where carriage returns
are noise, so there it prints a line every tenth of the way (or every 30 s).  No
dependency: the bar is one line of text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Literal, TextIO

Mode = Literal["auto", "bar", "lines", "none"]
_REDRAW_SECONDS = 0.1
_LINE_SECONDS = 30.0


class Progress:
    def __init__(
        self,
        total: int,
        stream: TextIO,
        mode: Mode = "auto",
        *,
        label: str = "catalog push",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode == "auto":
            mode = "bar" if _isatty(stream) else "lines"
        self.mode = mode
        self.total = total
        self.done = 0
        self.stream = stream
        self.label = label
        self.clock = clock
        self.started = clock()
        self._last_draw = float("-inf") if mode == "bar" else self.started
        self._drawn = False
        self._last_tenth = 0

    def __call__(self, items: int) -> None:
        self.advance(items)

    def advance(self, items: int) -> None:
        self.done += items
        now = self.clock()
        if self.mode == "bar":
            if now - self._last_draw >= _REDRAW_SECONDS or self.done >= self.total:
                self._draw(now)
        elif self.mode == "lines":
            tenth = self.done * 10 // self.total if self.total else 10
            if tenth > self._last_tenth or now - self._last_draw >= _LINE_SECONDS:
                self._last_tenth = tenth
                self._last_draw = now
                self.stream.write(f"{self.label}: {self._numbers(now)}\n")
                self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (the summary follows on its own line)."""
        if self.mode == "bar" and self._drawn:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def _numbers(self, now: float) -> str:
        pct = 100 * self.done // self.total if self.total else 100
        elapsed = now - self.started
        rate = f", {self.done / elapsed:,.0f} items/s" if elapsed > 0 else ""
        return f"{self.done:,}/{self.total:,} items ({pct}%){rate}"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn = True
        width = _columns(self.stream) - 2
        text = self._numbers(now)
        bar_width = max(10, min(40, width - len(self.label) - len(text) - 5))
        filled = bar_width * self.done // self.total if self.total else bar_width
        bar = "#" * filled + "-" * (bar_width - filled)
        line = f"{self.label} [{bar}] {text}"
        self.stream.write("\r" + line[:width] + "\x1b[K")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80
