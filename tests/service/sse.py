"""A tiny Server-Sent Events reader for tests: events land in a queue as they arrive."""

from __future__ import annotations

import queue
import threading
from typing import Any

import httpx

from bridge.loyalty.protocol import loads


class SseReader:
    def __init__(self, url: str, token: str) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = httpx.Client(
            headers={"X-Posbridge-Token": token}, timeout=httpx.Timeout(5, read=None)
        )
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        if not self._connected.wait(10):
            raise AssertionError("event stream did not open")

    def _run(self, url: str) -> None:
        try:
            with self._client.stream("GET", url) as response:
                self._connected.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.put(loads(line[6:]))
        except httpx.HTTPError:
            return

    def next(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of `kind` (others are skipped)."""
        while True:
            event = self.events.get(timeout=timeout)
            if event["type"] == kind:
                return event

    def close(self) -> None:
        self._client.close()
