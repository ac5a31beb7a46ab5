"""Devices that come back by themselves after an unplug.

Cashiers kick cables.  A scanner whose port vanishes must go offline with a status the
POS can show, then return as soon as the port reappears, without anyone restarting the
service.  One thread per device does the reading *and* the reopening, so a hundred
unplugs leave exactly one thread and no file descriptors behind; the retry delay grows
exponentially up to a cap so a missing device costs almost nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.device import Device, ErrorEvent, PowerState
from drivers.transport.base import Transport, TransportError

log = logging.getLogger("posbridge.drivers.reconnect")

TransportFactory = Callable[[], Transport]


@dataclass
class Backoff:
    """The one retry policy: initial, initial*factor, ... capped at maximum (seconds).

    Reconnect loops use it as a sequence (`next()`, `reset()` once the device is back);
    the print queue asks for the delay after the n-th failed attempt (`delay(n)`), which
    keeps no state, so one policy value can be shared.
    """

    initial: float = 0.2
    maximum: float = 5.0
    factor: float = 2.0
    _attempts: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum, got {self.initial}, {self.maximum}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1 = the first failure)."""
        steps = min(max(attempt - 1, 0), 64)  # past 2**64 the cap has long been reached
        return float(min(self.maximum, self.initial * float(self.factor) ** steps))

    def next(self) -> float:
        self._attempts += 1
        return self.delay(self._attempts)

    def reset(self) -> None:
        self._attempts = 0


class ReaderLoop:
    """Open, read, reopen: the single worker thread behind a reconnecting device.

    Callbacks run on the worker thread.  `on_data(data, monotonic_now)` gets every
    chunk read, `on_tick(monotonic_now)` runs after every read (with or without data) so
    idle timeouts fire, `on_status(power, reason)` reports online/offline.
    """

    def __init__(
        self,
        name: str,
        factory: TransportFactory,
        *,
        on_data: Callable[[bytes, float], None],
        on_tick: Callable[[float], None],
        on_status: Callable[[PowerState, str], None],
        on_error: Callable[[str], None],
        backoff: Backoff | None = None,
        poll: float = 0.05,
    ) -> None:
        self.name = name
        self._factory = factory
        self._on_data = on_data
        self._on_tick = on_tick
        self._on_status = on_status
        self._on_error = on_error
        self.backoff = backoff or Backoff()
        self.poll = poll
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._transport: Transport | None = None

    @property
    def transport(self) -> Transport | None:
        """The open transport, or None while the device is away."""
        return self._transport

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s: reader thread did not stop within %.1fs", self.name, timeout)
        self._drop_transport()

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff delay (e.g. udev just announced the device)."""
        self._wake.set()

    def _drop_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _wait(self, delay: float) -> None:
        self._wake.wait(delay)
        self._wake.clear()

    def _connect(self) -> Transport | None:
        transport: Transport | None = None
        try:
            transport = self._factory()
            transport.open()
        except Exception as exc:  # a bad factory must not kill the thread silently either
            if transport is not None:
                transport.close()
            if not isinstance(exc, TransportError | OSError):
                log.exception("%s: opening the transport failed", self.name)
                self._on_error(f"opening the transport failed: {exc!r}")
            self._on_status(PowerState.OFFLINE, str(exc))
            self._wait(self.backoff.next())
            return None
        self.backoff.reset()
        self._transport = transport
        self._on_status(PowerState.ONLINE, transport.name)
        return transport

    def _run(self) -> None:
        while not self._stop.is_set():
            transport = self._transport or self._connect()
            if transport is None:
                continue
            try:
                data = transport.read(4096, self.poll)
            except TransportError as exc:
                self._drop_transport()
                if self._stop.is_set():
                    break
                self._on_status(PowerState.OFFLINE, str(exc))
                self._wait(self.backoff.next())
                continue
            now = time.monotonic()
            try:
                if data:
                    self._on_data(data, now)
                self._on_tick(now)
            except Exception as exc:  # a parser bug must not kill the device thread
                log.exception("%s: handling input failed", self.name)
                self._on_error(f"handling input failed: {exc!r}")
        self._drop_transport()


class ReconnectingDevice(Device):
    """A Device fed by a ReaderLoop: reading starts at open(), stops at close().

    Input is only delivered while the device is enabled.  Data completed while it is not
    enabled is reported as an ErrorEvent and not queued: a scan made while the POS was
    not listening must not be applied later to a different sale.
    """

    def __init__(
        self,
        name: str,
        factory: TransportFactory,
        *,
        backoff: Backoff | None = None,
        poll: float = 0.05,
    ) -> None:
        super().__init__(name)
        self._loop = ReaderLoop(
            name,
            factory,
            on_data=self._on_bytes,
            on_tick=self._on_tick,
            on_status=self._on_status,
            on_error=lambda message: self.emit(ErrorEvent(self.name, message)),
            backoff=backoff,
            poll=poll,
        )

    @property
    def transport(self) -> Transport | None:
        return self._loop.transport

    def reconnect_now(self) -> None:
        self._loop.reconnect_now()

    def _do_open(self) -> None:
        self._loop.start()

    def _do_close(self) -> None:
        self._loop.stop()
        self.set_power(PowerState.UNKNOWN, reason="closed")

    def _on_status(self, power: PowerState, reason: str) -> None:
        if power is not self.power:
            log.info("%s: %s (%s)", self.name, power, reason)
        self.set_power(power, reason=reason)

    def _on_bytes(self, data: bytes, now: float) -> None:
        raise NotImplementedError

    def _on_tick(self, now: float) -> None:
        return None
