"""Tell device owners when their device is plugged in or pulled out.

A cashier who re-plugs a scanner expects it to work at once, not after the next retry.
Where udev runs, its netlink events say so within milliseconds.  Where it does not
(containers, minimal images, a broken udevd) presence is polled instead, with a backoff
that restarts short after every change and is bounded, so a missing device costs a sysfs
scan every few seconds at most.  Polling also runs, at its slowest, beside udev as a
safety net for a lost event.

A device is named as in the config: subsystem plus VID:PID[:serial] and/or a device node
(/dev/ttyACM0 or a /dev/.../by-id link).  Removal events carry only what udev recorded,
so identities come from event properties (ID_VENDOR_ID, PRODUCT, ...) before sysfs.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyudev

from drivers.reconnect import Backoff
from drivers.transport.usb import UsbId

log = logging.getLogger("posbridge.drivers.hotplug")

__all__ = ["Backoff", "DeviceMatch", "HotplugEvent", "HotplugMonitor", "Presence", "find_present"]

SUBSYSTEMS = ("usb", "usbmisc", "tty", "input", "hidraw")


@dataclass(frozen=True)
class DeviceMatch:
    subsystem: str
    usb: UsbId | None = None
    devnode: str | None = None

    def __post_init__(self) -> None:
        if self.subsystem not in SUBSYSTEMS:
            raise ValueError(
                f"hotplug subsystem {self.subsystem!r}: expected one of {', '.join(SUBSYSTEMS)}"
            )
        if self.usb is None and self.devnode is None:
            raise ValueError("hotplug match needs a USB VID:PID[:serial] or a device node")
        if self.devnode is not None and not self.devnode.startswith("/"):
            raise ValueError(f"device node {self.devnode!r}: give an absolute /dev path")

    def matches(self, device: Any) -> bool:
        """True for a pyudev Device (from an event or enumeration) that is this device."""
        if device.subsystem != self.subsystem or device.device_node is None:
            return False  # e.g. input7 beside event7: only nodes can be opened
        devtype = device.properties.get("DEVTYPE")
        if self.subsystem == "usb" and devtype not in (None, "usb_device"):
            return False  # interfaces of the device: one event per device is enough
        if self.devnode is not None and not _node_matches(device, self.devnode):
            return False
        return self.usb is None or _usb_identity_matches(device, self.usb)


def _node_matches(device: Any, devnode: str) -> bool:
    links = (device.properties.get("DEVLINKS") or "").split()
    if devnode == device.device_node or devnode in links:
        return True
    return os.path.islink(devnode) and os.path.realpath(devnode) == device.device_node


def _usb_identity_matches(device: Any, wanted: UsbId) -> bool:
    vid, pid, serial = _identity(device)
    return (
        vid == wanted.vid
        and pid == wanted.pid
        and (wanted.serial is None or serial == wanted.serial)
    )


def _identity(device: Any) -> tuple[int | None, int | None, str | None]:
    """VID, PID, serial from udev properties, else the kernel's PRODUCT, else sysfs."""
    try:
        props = device.properties
        vid = props.get("ID_VENDOR_ID") or props.get("ID_USB_VENDOR_ID")
        pid = props.get("ID_MODEL_ID") or props.get("ID_USB_MODEL_ID")
        serial = props.get("ID_SERIAL_SHORT") or props.get("ID_USB_SERIAL_SHORT")
        if (vid is None or pid is None) and props.get("PRODUCT") and device.subsystem == "usb":
            vid, pid = props.get("PRODUCT").split("/")[:2]
        usb = device if device.subsystem == "usb" else device.find_parent("usb", "usb_device")
        if usb is not None and (vid is None or pid is None or serial is None):
            attrs = usb.attributes
            vid = vid or _attr(attrs, "idVendor")
            pid = pid or _attr(attrs, "idProduct")
            serial = serial or _attr(attrs, "serial")
        return (int(vid, 16) if vid else None, int(pid, 16) if pid else None, serial)
    except (ValueError, OSError, KeyError):
        return None, None, None  # a half-gone device during removal: no identity


def _attr(attrs: Any, name: str) -> str | None:
    try:
        value = attrs.asstring(name)
    except (KeyError, UnicodeDecodeError, OSError):
        return None
    return str(value).strip() or None


@dataclass(frozen=True)
class HotplugEvent:
    action: str  # "add" or "remove"
    match: DeviceMatch
    devnode: str | None = None
    syspath: str | None = None
    source: str = "udev"  # "udev" (netlink event) or "poll" (presence changed between scans)


Listener = Callable[[HotplugEvent], None]


@dataclass(frozen=True)
class Presence:
    present: bool
    devnode: str | None = None
    syspath: str | None = None


def find_present(context: Any, match: DeviceMatch) -> Presence:
    """Whether the device is plugged in now: a sysfs scan, no udev daemon needed.

    A device named only by its node is present while the node exists (devtmpfs removes
    nodes on unplug, udev removes by-id links).
    """
    if match.devnode is not None and not os.path.exists(match.devnode):
        return Presence(False)
    node = os.path.realpath(match.devnode) if match.devnode is not None else None
    for device in context.list_devices(subsystem=match.subsystem):
        if device.device_node is None or (node is not None and device.device_node != node):
            continue
        devtype = device.properties.get("DEVTYPE")
        if match.subsystem == "usb" and devtype not in (None, "usb_device"):
            continue
        if match.usb is None or _usb_identity_matches(device, match.usb):
            return Presence(True, device.device_node, device.sys_path)
    if match.usb is None:
        return Presence(True, match.devnode)
    return Presence(False)


class HotplugMonitor:
    """Background watcher calling listeners with add/remove events for watched devices.

    Listeners run on the monitor's thread and must return quickly (hand over to the
    device's own thread); one that raises is logged and the others still run.
    """

    def __init__(
        self,
        *,
        udev: bool = True,
        backoff: Backoff | None = None,
        context: Any = None,
    ) -> None:
        self._context = context if context is not None else pyudev.Context()
        self._use_udev = udev
        self._backoff = backoff or Backoff()
        self._watches: dict[DeviceMatch, list[Listener]] = {}
        self._present: dict[DeviceMatch, bool] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._monitor: Any = None

    # API ----------------------------------------------------------------------------
    def watch(self, match: DeviceMatch, listener: Listener) -> Callable[[], None]:
        """Start telling `listener` about `match`; returns the function that stops it."""
        with self._lock:
            self._watches.setdefault(match, []).append(listener)
            self._present.setdefault(match, find_present(self._context, match).present)
        self._wake()

        def unwatch() -> None:
            with self._lock:
                listeners = self._watches.get(match, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._watches.pop(match, None)
                    self._present.pop(match, None)

        return unwatch

    def is_present(self, match: DeviceMatch) -> bool:
        return find_present(self._context, match).present

    @property
    def using_udev(self) -> bool:
        return self._monitor is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        if self._use_udev:
            try:
                monitor = pyudev.Monitor.from_netlink(self._context)
                for subsystem in SUBSYSTEMS:
                    monitor.filter_by(subsystem)
                monitor.start()
                self._monitor = monitor
            except (OSError, pyudev.DeviceNotFoundError, ValueError) as exc:
                log.warning("udev events unavailable (%s); polling for devices instead", exc)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="posbridge-hotplug", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        os.write(self._wake_w, b"q")
        thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1
        self._monitor = None  # pyudev closes the netlink socket when the monitor is freed

    def __enter__(self) -> HotplugMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # thread -------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"w")
            except OSError:
                pass

    def _run(self) -> None:
        backoff = self._backoff
        if self._monitor is not None:
            backoff = Backoff(backoff.maximum, backoff.maximum)  # udev is primary: poll slowly
        fds = [self._wake_r] + ([self._monitor.fileno()] if self._monitor is not None else [])
        while True:
            ready, _, _ = select.select(fds, [], [], backoff.next())
            if self._wake_r in ready:
                if b"q" in os.read(self._wake_r, 64):
                    return
                continue
            if ready:
                for device in self._drain():
                    self._on_udev(device)
                continue
            if self._poll():
                backoff.reset()

    def _drain(self) -> Iterator[Any]:
        while True:
            device = self._monitor.poll(timeout=0)
            if device is None:
                return
            yield device

    def _on_udev(self, device: Any) -> None:
        if device.action not in ("add", "remove"):
            return
        with self._lock:
            watched = [m for m in self._watches if m.matches(device)]
        for match in watched:
            self._present[match] = device.action == "add"
            self._emit(
                HotplugEvent(device.action, match, device.device_node, device.sys_path, "udev")
            )

    def _poll(self) -> bool:
        changed = False
        with self._lock:
            watched = list(self._watches)
        for match in watched:
            found = find_present(self._context, match)
            if self._present.get(match) == found.present:
                continue
            self._present[match] = found.present
            changed = True
            self._emit(
                HotplugEvent(
                    "add" if found.present else "remove",
                    match,
                    found.devnode or match.devnode,
                    found.syspath,
                    "poll",
                )
            )
        return changed

    def _emit(self, event: HotplugEvent) -> None:
        with self._lock:
            listeners = list(self._watches.get(event.match, []))
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("hotplug listener failed for %s", event)
