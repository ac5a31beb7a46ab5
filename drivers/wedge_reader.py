"""Feed a keyboard-wedge device (scanner or card reader) from an evdev node, for good.

The decoders (`WedgeScanner`, `WedgeCardReader`) only turn key events into scans; this
owns the evdev node: it opens and grabs it in a thread, pumps key events into the
decoder, and when the node vanishes it reports the device offline and reopens it with
a bounded backoff, so an unplugged scanner comes back by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from drivers.device import PowerState
from drivers.reconnect import Backoff
from drivers.transport.base import TransportError
from drivers.transport.evdev_input import EvdevInputTransport, pump_keys

log = logging.getLogger("posbridge.drivers.wedge_reader")


class KeyFed(Protocol):
    name: str

    def feed_key(self, code: int, value: int, timestamp: float) -> None: ...

    def poll(self, now: float) -> None: ...

    def set_power(self, power: PowerState, **detail: object) -> None: ...


class EvdevWedge:
    def __init__(
        self,
        device: KeyFed,
        path: str,
        *,
        backoff: Backoff | None = None,
        transport_factory: Callable[[str], EvdevInputTransport] = EvdevInputTransport,
    ) -> None:
        self.device = device
        self.path = path
        self.backoff = backoff or Backoff(0.2, 5.0)
        self._factory = transport_factory
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"wedge-{self.device.name}", daemon=True
            )
            self._thread.start()

    def reconnect_now(self) -> None:
        """Skip the backoff (a hotplug 'add' event for this node arrived)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            transport = self._factory(self.path)
            try:
                transport.open()
            except TransportError as exc:
                self.device.set_power(PowerState.OFFLINE, reason=str(exc))
                self._wait(self.backoff.next())
                continue
            self.backoff.reset()
            self.device.set_power(PowerState.ONLINE, reason=f"{self.path} opened")
            try:
                pump_keys(transport, self.device.feed_key, self.device.poll, self._stop)
            except TransportError as exc:
                log.info("%s: %s", self.device.name, exc)
                self.device.set_power(PowerState.OFFLINE, reason=str(exc))
            finally:
                transport.close()

    def _wait(self, delay: float) -> None:
        self._wake.wait(delay)
        self._wake.clear()
