"""A barcode scanner on a byte transport (serial, USB-CDC, TCP), as a UnifiedPOS device.

Scans arrive as `DataEvent(data=ScanEvent)`; incomplete scans (suffix never came) and
scans made while the device was not enabled as `ErrorEvent`; unplug/replug as
`StatusEvent` from the reconnect loop.  An error never carries the scan's bytes, which
may be a whole track 2 or loyalty number: only their length and `masking.shape`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.masking import shape
from drivers.reconnect import Backoff, ReconnectingDevice, TransportFactory
from drivers.scanner.framing import Frame, Framer
from drivers.scanner.scan import ScanOptions, make_scan

log = logging.getLogger("posbridge.drivers.scanner.device")


@dataclass(frozen=True)
class ScannerConfig:
    suffix: bytes | None = b"\r"  # None: a scan ends after idle_timeout of silence
    idle_timeout: float = 0.05
    scan: ScanOptions = field(default_factory=ScanOptions)
    max_length: int = 8192


class ScannerDevice(ReconnectingDevice):
    def __init__(
        self,
        name: str,
        factory: TransportFactory,
        config: ScannerConfig | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config or ScannerConfig()
        poll = min(0.05, self.config.idle_timeout / 2)
        super().__init__(name, factory, backoff=backoff, poll=poll)
        self._framer = Framer(
            self.config.suffix,
            prefix=self.config.scan.prefix,
            idle_timeout=self.config.idle_timeout,
            max_length=self.config.max_length,
        )

    def _on_bytes(self, data: bytes, now: float) -> None:
        for frame in self._framer.feed(data, now):
            self._deliver(frame)

    def _on_tick(self, now: float) -> None:
        for frame in self._framer.poll(now):
            self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        if not frame.terminated and self.config.suffix is not None:
            self.emit(
                ErrorEvent(
                    self.name,
                    f"incomplete scan discarded: {len(frame.data)} bytes without the "
                    f"suffix {self.config.suffix!r}, shaped {shape(frame.data)!r}",
                )
            )
            return
        if not self.enabled:
            log.info("%s: scan of %d bytes while not enabled, ignored", self.name, len(frame.data))
            self.emit(ErrorEvent(self.name, "scan ignored: scanner is not enabled"))
            return
        self.emit(DataEvent(self.name, make_scan(frame.data, self.name, self.config.scan)))

    def _on_status(self, power: PowerState, reason: str) -> None:
        super()._on_status(power, reason)
        if power is not PowerState.ONLINE and (lost := self._framer.reset()):
            self.emit(
                ErrorEvent(self.name, f"partial scan lost with the device: {len(lost)} bytes")
            )
