"""Answers of processing that deviate from the contract, counted and logged once.

Processing versions drift: a field changes its JSON type, turns null, disappears, a new
error code appears.  The register reads such answers tolerantly (protocol.py) so no sale
fails, but an integrator must still see the drift: each deviation is counted by
(operation, field, kind) for the metrics endpoint, and logged at WARNING the first time a
(field, kind) is seen, so a shop's log is not flooded with one line per answer.

One `Drift` per `LoyaltyClient` (no process-global registry); `bridge/metrics.py` reads
its counts at scrape time.  The number of distinct series is capped: field names of
unknown fields come from processing and must not grow memory or the metrics without end.
"""

from __future__ import annotations

import logging
import threading

from bridge.loyalty.protocol import UNKNOWN_FIELD

log = logging.getLogger("posbridge.loyalty.drift")

MAX_SERIES = 200
OTHER = "(other)"

Key = tuple[str, str, str]  # operation, field (wire name, "a.b" nested), kind


class Drift:
    """A `protocol.DriftSink`: counts deviations and logs each (field, kind) once."""

    def __init__(self, logger: logging.Logger = log, max_series: int = MAX_SERIES) -> None:
        self._log = logger
        self._max = max_series
        self._lock = threading.Lock()
        self._counts: dict[Key, int] = {}
        self._logged: set[tuple[str, str]] = set()

    def note(self, operation: str, field: str, kind: str, detail: str) -> None:
        with self._lock:
            key = (operation, field, kind)
            if key not in self._counts and len(self._counts) >= self._max:
                key = (operation, OTHER, kind)
            self._counts[key] = self._counts.get(key, 0) + 1
            first = (field, kind) not in self._logged and len(self._logged) < self._max
            if first:
                self._logged.add((field, kind))
        if first:
            # unknown fields are normal in a newer processing: worth one line, not a warning
            level = logging.INFO if kind == UNKNOWN_FIELD else logging.WARNING
            self._log.log(
                level,
                "processing answer drift: %s %s in a %s answer (%s); read tolerantly, "
                "counted in posbridge_processing_answer_drift_total, logged once",
                field,
                kind,
                operation,
                detail,
            )

    def counts(self) -> dict[Key, int]:
        """A copy of the counts by (operation, field, kind)."""
        with self._lock:
            return dict(self._counts)

    def total(
        self, *, operation: str | None = None, field: str | None = None, kind: str | None = None
    ) -> int:
        """How many deviations match the given labels (all when none is given)."""
        return sum(
            n
            for (op, f, k), n in self.counts().items()
            if (operation is None or op == operation)
            and (field is None or f == field)
            and (kind is None or k == kind)
        )
