"""A keyboard-wedge card reader, fed key events by an input reader.

Wedge readers type each track and often press Enter after every track, so one swipe
is several fast runs of keys.  Runs closer together than `swipe_gap` belong to one swipe;
the swipe is parsed once the gap has passed (on the next key or on `poll`).  Nothing
typed is logged: it holds the card number.
"""

from __future__ import annotations

from drivers.device import Device, ErrorEvent
from drivers.msr.device import MsrConfig, swipe_event
from drivers.scanner.keymap import HidDecoder, KeyedText


class WedgeCardReader(Device):
    def __init__(
        self,
        name: str,
        config: MsrConfig | None = None,
        *,
        gap_threshold: float = 0.03,
        swipe_gap: float = 0.3,
    ) -> None:
        super().__init__(name)
        self.config = config or MsrConfig()
        self.swipe_gap = swipe_gap
        self._decoder = HidDecoder(gap_threshold=gap_threshold)
        self._runs: list[str] = []
        self._last_end = 0.0

    def _do_open(self) -> None:
        return None

    def _do_close(self) -> None:
        self._runs.clear()

    def feed_key(self, code: int, value: int, timestamp: float) -> None:
        if self._runs and value == 1 and timestamp - self._last_end > self.swipe_gap:
            self._finish()
        for keyed in self._decoder.feed(code, value, timestamp):
            self._collect(keyed)

    def poll(self, now: float) -> None:
        for keyed in self._decoder.flush(now):
            self._collect(keyed)
        if self._runs and now - self._last_end > self.swipe_gap:
            self._finish()

    def _collect(self, keyed: KeyedText) -> None:
        if not keyed.from_scanner:
            self.emit(ErrorEvent(self.name, f"{len(keyed.text)} keys ignored: not a card swipe"))
            return
        self._runs.append(keyed.text)
        self._last_end = keyed.ended

    def _finish(self) -> None:
        text = "\r".join(self._runs)
        self._runs.clear()
        if not self.enabled:
            self.emit(ErrorEvent(self.name, "swipe ignored: card reader is not enabled"))
            return
        self.emit(swipe_event(text, self.name, self.config))
