"""Counters the tests and benchmarks read back, and the per-register in-flight tally.

Both live in memory under their own small locks, never under the database lock: an
overlap must be seen while the first request is still being processed, and a request
waiting for the database lock is exactly such a request.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.overlaps = 0
            self.duplicates = 0
            self.unknown_goods = 0
            self.unknown_goods_ids: set[str] = set()
            self.by_operation: Counter[str] = Counter()
            self.by_code: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()

    def request(self, operation: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_operation[operation] += 1

    def answered(self, status: int, code: str) -> None:
        with self._lock:
            self.by_status[str(status)] += 1
            self.by_code[code] += 1

    def overlap(self) -> None:
        with self._lock:
            self.overlaps += 1

    def duplicate(self) -> None:
        with self._lock:
            self.duplicates += 1

    def unknown_goods_line(self, goods_id: str) -> None:
        with self._lock:
            self.unknown_goods += 1
            self.unknown_goods_ids.add(goods_id)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "overlaps": self.overlaps,
                "duplicates": self.duplicates,
                "unknownGoods": self.unknown_goods,
                "unknownGoodsIds": sorted(self.unknown_goods_ids),
                "byOperation": dict(self.by_operation),
                "byCode": dict(self.by_code),
                "byStatus": dict(self.by_status),
            }


class InFlight:
    """Requests being processed, per register: a second one at the same time is an overlap."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count: Counter[str] = Counter()

    def enter(self, register: str) -> bool:
        """Claim the register; False (and nothing claimed) when another request holds it."""
        with self._changed:
            if self._count[register]:
                return False
            self._count[register] += 1
            self._changed.notify_all()
            return True

    def leave(self, register: str) -> None:
        with self._changed:
            self._count[register] -= 1
            if self._count[register] <= 0:
                del self._count[register]
            self._changed.notify_all()

    def busy(self, register: str) -> bool:
        with self._changed:
            return self._count[register] > 0

    def wait_idle(self, register: str, timeout: float) -> bool:
        """Block until no request of `register` is in flight (its held requests are done)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count[register] == 0, timeout)

    def wait_busy(self, register: str, timeout: float) -> bool:
        """Block until a request of `register` is in flight (tests order steps with this)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count[register] > 0, timeout)
