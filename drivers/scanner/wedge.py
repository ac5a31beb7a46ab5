"""A keyboard-wedge scanner as a UnifiedPOS device, fed key events by an input reader.

The evdev reader (drivers/transport/evdev_input.py) owns the input device and its
thread; it calls `feed_key(code, value, timestamp)` for every EV_KEY event and `poll(now)`
when it wakes without input.  This class only decides what the keys meant, so it is the
same for a real evdev node, a umockdev recording or a test.
"""

from __future__ import annotations

import logging

from drivers.device import DataEvent, Device, ErrorEvent
from drivers.masking import shape
from drivers.scanner.keymap import HidDecoder, KeyedText
from drivers.scanner.scan import ScanOptions, make_scan_from_text

log = logging.getLogger("posbridge.drivers.scanner.wedge")


class WedgeScanner(Device):
    def __init__(
        self,
        name: str,
        *,
        options: ScanOptions | None = None,
        gap_threshold: float = 0.03,
        min_length: int = 1,
        require_enter: bool = True,
    ) -> None:
        super().__init__(name)
        self.options = options or ScanOptions()
        self.require_enter = require_enter
        self._decoder = HidDecoder(gap_threshold=gap_threshold, min_length=min_length)

    def _do_open(self) -> None:
        return None

    def _do_close(self) -> None:
        return None

    def feed_key(self, code: int, value: int, timestamp: float) -> None:
        for keyed in self._decoder.feed(code, value, timestamp):
            self._deliver(keyed)

    def poll(self, now: float) -> None:
        """`now` on the key events' clock; ends a scan whose Enter never came."""
        for keyed in self._decoder.flush(now):
            self._deliver(keyed)

    def _deliver(self, keyed: KeyedText) -> None:
        if not keyed.from_scanner:
            self.emit(ErrorEvent(self.name, f"{len(keyed.text)} keys ignored: typed, not scanned"))
            return
        if self.require_enter and not keyed.terminated:
            self.emit(
                ErrorEvent(
                    self.name,
                    f"incomplete scan discarded: {len(keyed.text)} keys without Enter, "
                    f"shaped {shape(keyed.text)!r}",
                )
            )
            return
        if keyed.unmapped:
            log.info("%s: keys without a character in a scan: %s", self.name, keyed.unmapped)
        if not self.enabled:
            self.emit(ErrorEvent(self.name, "scan ignored: scanner is not enabled"))
            return
        scan = make_scan_from_text(keyed.text, self.name, self.options, keyed.ended)
        self.emit(DataEvent(self.name, scan, keyed.ended))
