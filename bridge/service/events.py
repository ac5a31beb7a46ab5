"""Fan-out of device and loyalty events to every POS listening on /v1/events.

Publishers are device reader threads and request handlers; subscribers are SSE
streams on the event loop.  Every event passes `masked` on its way in, so no card number
reaches a stream or the log whichever publisher forgot.  Each subscriber has a bounded
queue: a POS that stops reading loses its oldest events (and is told so), never the
register's memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from typing import Any

from drivers.masking import mask_data

log = logging.getLogger("posbridge.events")

MAX_QUEUED = 1000
# A scan classified as a product is the product's code: the POS needs it byte for byte
# (a GTIN or a marking code can hold a Luhn-valid run by chance).  Everything else --
# device errors, unknown scans, reasons, warnings -- goes through `mask_data`.
PRODUCT_KINDS = frozenset({"gtin", "weight_item", "marking_code"})
CLOSED: dict[str, Any] = {"type": "_closed"}  # the service is stopping: streams end


def masked(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every card number in its text masked (product scans kept as scanned)."""
    if event_type == "scan" and data.get("kind") in PRODUCT_KINDS:
        return data
    return {k: mask_data(v) for k, v in data.items()}


class Subscription:
    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED)
        self.lost = 0

    def _put(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.lost += 1
        self.queue.put_nowait(event)

    def _end(self) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(CLOSED)

    async def get(self) -> dict[str, Any]:
        event = await self.queue.get()
        if self.lost:
            event = {**event, "lostBefore": self.lost}
            self.lost = 0
        return event

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.published = 0

    def subscribe(self) -> Subscription:
        sub = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event_type: str, /, **data: Any) -> dict[str, Any]:
        """Thread-safe; card numbers in `data` are masked here whatever the caller did."""
        data = masked(event_type, data)
        event = {"id": next(self._ids), "type": event_type, "time": time.time(), **data}
        self.published += 1
        if log.isEnabledFor(logging.INFO):  # one structured line per event, already masked
            fields = " ".join(f"{k}={v}" for k, v in data.items() if k != "text")
            log.info("event=%s %s", event_type, fields)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub._put, event)
            except RuntimeError:  # its loop is closed: the stream is gone
                self.unsubscribe(sub)
        return event

    def close(self) -> None:
        """End every stream (service shutdown), so no connection holds the exit up."""
        with self._lock:
            subs, self._subs = list(self._subs), []
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub._end)
            except RuntimeError:
                pass

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)
