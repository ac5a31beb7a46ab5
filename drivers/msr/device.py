"""A magnetic card reader on a byte transport (serial, USB-CDC), as a UnifiedPOS device.

A swipe is a burst of one to three tracks, often with CR between them and sometimes
wrapped in STX/ETX, so by default the swipe ends with the silence after the burst
rather than at a suffix.  The same text path serves keyboard-wedge readers: hand the
decoded text to `swipe_event`.  Track contents are never logged, only their length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.device import DataEvent, ErrorEvent, PowerState
from drivers.msr.tracks import CardRange, SwipeError, parse_swipe
from drivers.reconnect import Backoff, ReconnectingDevice, TransportFactory
from drivers.scanner.framing import Framer
from drivers.scanner.layout_repair import repair_layout

log = logging.getLogger("posbridge.drivers.msr.device")


@dataclass(frozen=True)
class MsrConfig:
    suffix: bytes | None = None  # None: the swipe ends after idle_timeout of silence
    idle_timeout: float = 0.1
    luhn_ranges: Sequence[CardRange] = ()
    repair_layout: bool = True  # wedge text typed under a Russian layout ("ж" for ";")


def swipe_event(text: str, device: str, config: MsrConfig) -> DataEvent | ErrorEvent:
    """DataEvent(CardSwipe) for a usable swipe, else an ErrorEvent saying why."""
    if config.repair_layout:
        text = repair_layout(text)
    try:
        swipe = parse_swipe(text, luhn_ranges=config.luhn_ranges)
    except SwipeError as exc:
        log.info("%s: unreadable swipe of %d characters: %s", device, len(text), exc)
        return ErrorEvent(device, f"card swipe not understood: {exc}")
    if swipe.number is None:
        statuses = ", ".join(f"track {n}: {swipe.status(n)}" for n in (1, 2, 3))
        return ErrorEvent(device, f"card not read ({statuses}); swipe again")
    return DataEvent(device, swipe)


def decode_swipe(data: bytes) -> str:
    """Swipe bytes as text, so that a Russian layout shows as Cyrillic and can be repaired.

    Tracks are plain ASCII.  Anything above it came from text typed under a keyboard
    layout and forwarded (a wedge reader behind a keyboard-to-serial bridge): UTF-8
    when the bytes are valid UTF-8, else the Russian single-byte code page (cp1251),
    where `ж` is 0xE6.  Latin-1 would turn `ж` into `Ð¶` and hide the layout.
    """
    if data.isascii():
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


class MsrDevice(ReconnectingDevice):
    def __init__(
        self,
        name: str,
        factory: TransportFactory,
        config: MsrConfig | None = None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config or MsrConfig()
        super().__init__(
            name, factory, backoff=backoff, poll=min(0.05, self.config.idle_timeout / 2)
        )
        self._framer = Framer(self.config.suffix, idle_timeout=self.config.idle_timeout)

    def _on_bytes(self, data: bytes, now: float) -> None:
        for frame in self._framer.feed(data, now):
            self._deliver(frame.data, frame.terminated)

    def _on_tick(self, now: float) -> None:
        for frame in self._framer.poll(now):
            self._deliver(frame.data, frame.terminated)

    def _deliver(self, data: bytes, terminated: bool) -> None:
        if not terminated and self.config.suffix is not None:
            self.emit(ErrorEvent(self.name, f"incomplete swipe discarded ({len(data)} bytes)"))
            return
        if not self.enabled:
            self.emit(ErrorEvent(self.name, "swipe ignored: card reader is not enabled"))
            return
        self.emit(swipe_event(decode_swipe(data), self.name, self.config))

    def _on_status(self, power: PowerState, reason: str) -> None:
        super()._on_status(power, reason)
        if power is not PowerState.ONLINE and self._framer.reset():
            self.emit(ErrorEvent(self.name, "partial swipe lost with the device; swipe again"))
