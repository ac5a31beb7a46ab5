"""Device model in UnifiedPOS terms, shared by every driver.

A POS integrator knows open / claim / enable and data / error / status events from
UnifiedPOS (OPOS, JavaPOS); using the same words means the local API and the logs read
the way technicians already think.  Status flags are three-valued because a printer that
cannot answer a status query is *unknown*, not "fine".
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class DeviceState(enum.StrEnum):
    CLOSED = "closed"
    IDLE = "idle"  # opened (and maybe claimed), not busy
    BUSY = "busy"
    ERROR = "error"


class PowerState(enum.StrEnum):
    ONLINE = "online"
    OFF = "off"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class Flag(enum.Enum):
    """Three-valued status flag: TRUE, FALSE or UNKNOWN (never guessed)."""

    TRUE = True
    FALSE = False
    UNKNOWN = None

    @classmethod
    def of(cls, value: bool | None) -> Flag:
        return cls.UNKNOWN if value is None else (cls.TRUE if value else cls.FALSE)

    def __bool__(self) -> bool:  # forbid `if flag:` which would silently treat UNKNOWN as false
        raise TypeError("a three-valued Flag has no truth value; compare with Flag.TRUE")

    def to_json(self) -> bool | None:
        return self.value  # type: ignore[no-any-return]


class DeviceError(Exception):
    """A device operation failed; the message names the device and the reason."""


class NotClaimedError(DeviceError):
    pass


@dataclass(frozen=True)
class DataEvent:
    device: str
    data: Any
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ErrorEvent:
    device: str
    message: str
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StatusEvent:
    device: str
    power: PowerState
    detail: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


Event = DataEvent | ErrorEvent | StatusEvent
Listener = Callable[[Event], None]


class Device:
    """Lifecycle bookkeeping every driver shares: open -> claim -> enable, and back.

    Subclasses implement `_do_open`, `_do_close` (and may override `_do_claim`,
    `_do_enable`).  Events go to listeners added with `add_listener`; a listener that
    raises is reported as an ErrorEvent, never breaks the device.  Drivers that read
    (scanners, card readers) call listeners from their reader thread: a listener should
    hand the event on (e.g. to a queue) rather than block, and must not call `close()`
    of the same device while holding a lock that `close()` callers also take.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = DeviceState.CLOSED
        self.power = PowerState.UNKNOWN
        self.claimed = False
        self.enabled = False
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    # lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self.state is DeviceState.CLOSED:
                self._do_open()
                self.state = DeviceState.IDLE

    def claim(self, timeout: float = 0.0) -> None:
        with self._lock:
            if self.state is DeviceState.CLOSED:
                raise DeviceError(f"{self.name}: open the device before claiming it")
            if not self.claimed:
                self._do_claim(timeout)
                self.claimed = True

    def enable(self) -> None:
        with self._lock:
            if not self.claimed:
                raise NotClaimedError(f"{self.name}: claim the device before enabling it")
            if not self.enabled:
                self._do_enable()
                self.enabled = True

    def disable(self) -> None:
        with self._lock:
            if self.enabled:
                self._do_disable()
                self.enabled = False

    def release(self) -> None:
        with self._lock:
            self.disable()
            if self.claimed:
                self._do_release()
                self.claimed = False

    def close(self) -> None:
        with self._lock:
            self.release()
            if self.state is not DeviceState.CLOSED:
                self._do_close()
                self.state = DeviceState.CLOSED

    # hooks ---------------------------------------------------------------------
    def _do_open(self) -> None:
        raise NotImplementedError

    def _do_close(self) -> None:
        raise NotImplementedError

    def _do_claim(self, timeout: float) -> None:
        return None

    def _do_release(self) -> None:
        return None

    def _do_enable(self) -> None:
        return None

    def _do_disable(self) -> None:
        return None

    # events --------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a broken listener must not break the device
                if not isinstance(event, ErrorEvent):
                    self.emit(ErrorEvent(self.name, f"listener failed: {exc!r}"))

    def set_power(self, power: PowerState, **detail: Any) -> None:
        if power is not self.power:
            self.power = power
            self.emit(StatusEvent(self.name, power, dict(detail)))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, state={self.state}, power={self.power}, "
            f"claimed={self.claimed}, enabled={self.enabled})"
        )
