"""What the emulated registrar has printed, kept as lines a test or the demo can read.

Each line keeps its kind (plain text, bold, a font line, an item, a total, the fiscal
footer, a cut...) so a test can ask "were the loyalty lines inside the receipt, before
the total" without parsing layout.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

PaperKind = Literal[
    "text", "bold", "font", "header", "item", "total", "payment", "fiscal", "report", "cut"
]

CUT_MARK = "-" * 8 + " cut " + "-" * 8


@dataclass(frozen=True)
class PaperLine:
    kind: PaperKind
    text: str
    font: int = 1

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Paper:
    """A thread-safe roll: servers append from their threads, tests read from theirs."""

    def __init__(self) -> None:
        self._lines: list[PaperLine] = []
        self._lock = threading.Lock()

    def add(self, kind: PaperKind, text: str = "", font: int = 1) -> None:
        with self._lock:
            self._lines.append(PaperLine(kind, text, font))

    def lines(self) -> list[PaperLine]:
        with self._lock:
            return list(self._lines)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()

    def text(self) -> str:
        """One line per printed line; a cut shows as a dashed `cut` mark."""
        return "\n".join(CUT_MARK if line.kind == "cut" else line.text for line in self.lines())
