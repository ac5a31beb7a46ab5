"""Keyboard-wedge input (HID barcode scanners, MSR readers) read through evdev.

A keyboard-wedge device types its data as keystrokes.  Left alone, those keystrokes land
in whatever window has focus on the register, so the device is grabbed (EVIOCGRAB): while
posbridge holds it, no other reader of the input device, the desktop included, sees a key.

The device speaks key events, not bytes, so besides the transport contract this class has
`read_key_events(timeout) -> list[KeyEvent]`; `drivers/scanner/keymap.py` turns those into
text, and `pump_keys` feeds them to a `drivers.scanner.wedge.WedgeScanner`.  `read()`
refuses with a message pointing there, and `write()` refuses too: a wedge has no data
channel back.
"""

from __future__ import annotations

import errno
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import evdev
from evdev import ecodes

from drivers.transport.base import Transport, TransportClosed, TransportError

_GONE = (errno.ENODEV, errno.EIO, errno.EBADF)


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """One EV_KEY event.

    code: Linux key code (`evdev.ecodes.KEY_*`, e.g. KEY_1 == 2, KEY_ENTER == 28).
    value: 1 pressed, 0 released, 2 autorepeat.
    timestamp: the kernel's event time, seconds since the epoch.
    """

    code: int
    value: int
    timestamp: float

    PRESS = 1
    RELEASE = 0
    REPEAT = 2


def is_keyboard_like(capabilities: dict[int, list[int]]) -> bool:
    """Digits and Enter: what a wedge scanner types; mice and power buttons lack them."""
    keys = set(capabilities.get(ecodes.EV_KEY, []))
    digits = {getattr(ecodes, f"KEY_{d}") for d in range(10)}
    return ecodes.KEY_ENTER in keys and digits <= keys


class EvdevInputTransport(Transport):
    """One /dev/input/event* node (or a /dev/input/by-id link to it), grabbed while open."""

    def __init__(self, path: str, *, grab: bool = True, require_keyboard: bool = True) -> None:
        self.path = path
        self.grab = grab
        self.require_keyboard = require_keyboard
        self.name = f"input:{path}"
        self._dev: Any = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._dev is not None

    @property
    def device_name(self) -> str | None:
        """What the device calls itself (EVIOCGNAME), for logs and discovery."""
        dev = self._dev
        return None if dev is None else str(dev.name)

    def open(self) -> None:
        with self._lock:
            if self._dev is not None:
                return
            try:
                dev = evdev.InputDevice(self.path)
            except FileNotFoundError as exc:
                raise TransportClosed(f"{self.name}: no such input device") from exc
            except PermissionError as exc:
                raise TransportError(
                    f"{self.name}: permission denied; is this user in the posbridge group "
                    "and the udev rule installed?"
                ) from exc
            except OSError as exc:
                raise TransportError(f"{self.name}: cannot open: {exc}") from exc
            try:
                self._check_and_grab(dev)
            except BaseException:
                dev.close()
                raise
            self._dev = dev

    def _check_and_grab(self, dev: Any) -> None:
        if self.require_keyboard and not is_keyboard_like(dev.capabilities(verbose=False)):
            raise TransportError(
                f"{self.name}: {dev.name!r} is not keyboard-like (no digit and Enter keys)"
            )
        if not self.grab:
            return
        try:
            dev.grab()
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise TransportError(
                    f"{self.name}: {dev.name!r} is grabbed by another program"
                ) from exc
            raise TransportError(f"{self.name}: cannot grab {dev.name!r}: {exc}") from exc

    def read_key_events(self, timeout: float | None = 0.1) -> list[KeyEvent]:
        """Key events that arrived within `timeout` seconds (all that are queued); [] if none.

        Non-key events (SYN_REPORT, MSC_SCAN) are dropped: the keymap needs only keys.
        """
        dev = self._dev
        if dev is None:
            raise TransportClosed(f"{self.name}: transport is closed")
        try:
            ready, _, _ = select.select([dev.fd], [], [], timeout)
            if not ready:
                return []
            events = list(dev.read())
            if not events:
                # readable yet nothing read: end of file, which an evdev node only
                # reaches when its device is gone
                raise OSError(errno.ENODEV, "end of file on input device")
        except BlockingIOError:
            return []
        except OSError as exc:
            if exc.errno in _GONE:
                self.close()
                raise TransportClosed(f"{self.name}: input device unplugged") from exc
            raise TransportError(f"{self.name}: read failed: {exc}") from exc
        except ValueError as exc:  # select() on a closed fd: closed by another thread
            raise TransportClosed(f"{self.name}: transport is closed") from exc
        return [
            KeyEvent(int(e.code), int(e.value), float(e.timestamp()))
            for e in events
            if e.type == ecodes.EV_KEY
        ]

    def write(self, data: bytes) -> None:
        raise TransportError(f"{self.name}: a keyboard-wedge input device cannot be written to")

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        raise TransportError(
            f"{self.name}: yields key events, not bytes; use read_key_events() and "
            "drivers.scanner.keymap"
        )

    def close(self) -> None:
        with self._lock:
            dev, self._dev = self._dev, None
            if dev is None:
                return
            try:
                if self.grab:
                    dev.ungrab()
            except OSError:
                pass  # unplugged: the kernel dropped the grab with the device
            finally:
                dev.close()


def pump_keys(
    transport: EvdevInputTransport,
    feed: Callable[[int, int, float], None],
    tick: Callable[[float], None],
    stop: threading.Event,
    *,
    poll: float = 0.05,
) -> None:
    """Feed every key event to `feed(code, value, timestamp)` until `stop` is set.

    `tick(now)` runs whenever `poll` seconds pass without a key, so a scan whose Enter
    never came is still ended; `now` is on the events' clock (CLOCK_REALTIME, as
    `time.time()`).  Raises TransportClosed when the device goes: the caller reopens.
    This is the loop behind `WedgeScanner.feed_key` and `WedgeScanner.poll`.
    """
    while not stop.is_set():
        events = transport.read_key_events(timeout=poll)
        for event in events:
            feed(event.code, event.value, event.timestamp)
        if not events:
            tick(time.time())
