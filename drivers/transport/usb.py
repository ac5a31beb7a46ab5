"""USB bulk transport through pyusb/libusb, for printers and other vendor-class devices.

Receipt printers that are not CDC or usblp devices are driven by writing to a bulk OUT
endpoint and reading status answers (DLE EOT, GS r) from a bulk IN endpoint.  The device
is named by VID:PID and, when several identical models hang on one register, by its serial
number.  libusb reports an unplug as errno 19 (ENODEV); that becomes `TransportClosed` so
the device layer can go offline and reconnect when hotplug says the device is back.

pyusb takes timeouts in milliseconds; this module takes seconds like every transport.
"""

from __future__ import annotations

import errno
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import usb.core
import usb.util

from drivers.transport.base import Transport, TransportClosed, TransportError, TransportTimeout

_USB_ID = re.compile(r"^(?P<vid>[0-9a-fA-F]{4}):(?P<pid>[0-9a-fA-F]{4})(?::(?P<serial>\S+))?$")
_LIBUSB_ERROR_NO_DEVICE = -4
_MIN_READ_MS = 10


@dataclass(frozen=True)
class UsbId:
    """VID:PID[:serial] as written in config files and udev rules (hex, 4 digits each)."""

    vid: int
    pid: int
    serial: str | None = None

    @classmethod
    def parse(cls, text: str) -> UsbId:
        match = _USB_ID.match(text.strip())
        if match is None:
            raise ValueError(
                f"USB device {text!r}: expected VID:PID or VID:PID:SERIAL with 4 hex digits "
                "each, e.g. 04b8:0e15 or 04b8:0e15:ABC123"
            )
        return cls(int(match["vid"], 16), int(match["pid"], 16), match["serial"])

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    def __str__(self) -> str:
        return self.vid_pid + (f":{self.serial}" if self.serial else "")


@dataclass(frozen=True)
class UsbStrings:
    """The string descriptors, for discovery output and logs."""

    manufacturer: str | None
    product: str | None
    serial: str | None


def is_unplugged(exc: BaseException) -> bool:
    """True when a pyusb error means the device is gone rather than misbehaving."""
    if isinstance(exc, usb.core.USBError):
        return bool(exc.errno == errno.ENODEV or exc.backend_error_code == _LIBUSB_ERROR_NO_DEVICE)
    return isinstance(exc, OSError) and exc.errno == errno.ENODEV


def _ms(timeout: float | None) -> int:
    """pyusb/libusb milliseconds; 0 means wait forever there, so None maps to 0."""
    if timeout is None:
        return 0
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
    return max(1, math.ceil(timeout * 1000))


def _read_string(dev: Any, index: int) -> str | None:
    if not index:
        return None
    try:
        text = usb.util.get_string(dev, index)
    except (usb.core.USBError, ValueError, NotImplementedError):
        return None  # no langid table, stalled request: the string is simply unknown
    return str(text) if text is not None else None


class UsbTransport(Transport):
    """Bulk endpoints of one interface of one USB device.

    Endpoints are found in the interface descriptor (first bulk OUT, first bulk IN) unless
    given.  A kernel driver bound to the interface (usblp) is detached on open and
    re-attached on close.  Reads keep what a device sent beyond `size` for the next read, so
    a full-packet answer to a short read is never lost.
    """

    def __init__(
        self,
        device: UsbId | str,
        *,
        interface: int = 0,
        out_endpoint: int | None = None,
        in_endpoint: int | None = None,
        write_timeout: float = 5.0,
        detach_kernel_driver: bool = True,
    ) -> None:
        self.usb_id = device if isinstance(device, UsbId) else UsbId.parse(device)
        self.interface = interface
        self._want_out = out_endpoint
        self._want_in = in_endpoint
        self.write_timeout = write_timeout
        self.detach_kernel_driver = detach_kernel_driver
        self.name = f"usb:{self.usb_id}"
        self._dev: Any = None
        self._out: int | None = None
        self._in: int | None = None
        self._in_packet = 64
        self._detached = False
        self._pending = bytearray()
        self._lock = threading.RLock()

    # contract ---------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._dev is not None

    @property
    def out_endpoint(self) -> int | None:
        return self._out

    @property
    def in_endpoint(self) -> int | None:
        return self._in

    def open(self) -> None:
        with self._lock:
            if self._dev is not None:
                return
            dev = self._find()
            try:
                self._claim(dev)
            except usb.core.USBError as exc:
                self._give_back(dev)
                if is_unplugged(exc):
                    raise TransportClosed(f"{self.name}: device vanished while opening") from exc
                raise TransportError(f"{self.name}: cannot claim interface: {exc}") from exc
            except BaseException:
                self._give_back(dev)
                raise
            self._dev = dev
            self._pending.clear()

    def write(self, data: bytes) -> None:
        dev, out = self._require_open(), self._out
        if out is None:
            raise TransportError(
                f"{self.name}: interface {self.interface} has no bulk OUT endpoint"
            )
        view = memoryview(bytes(data))
        while view:
            try:
                sent = int(dev.write(out, view, timeout=_ms(self.write_timeout)))
            except usb.core.USBTimeoutError as exc:
                raise TransportTimeout(
                    f"{self.name}: write of {len(view)} bytes timed out after {self.write_timeout}s"
                ) from exc
            except usb.core.USBError as exc:
                raise self._failure("write", exc) from exc
            if sent <= 0:
                raise TransportError(f"{self.name}: device accepted no bytes")
            view = view[sent:]

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        if size <= 0:
            raise ValueError(f"read size must be positive, got {size}")
        dev, endpoint = self._require_open(), self._in
        if endpoint is None:
            raise TransportError(f"{self.name}: interface {self.interface} has no bulk IN endpoint")
        if not self._pending:
            # a device may send a whole packet; asking for less would be an overflow error
            want = max(size, self._in_packet)
            # libusb cancels a timed-out bulk IN transfer; with only a millisecond or two
            # that cancel raced the reap and the read never returned, so polls wait a little.
            millis = 0 if timeout is None else max(_MIN_READ_MS, _ms(timeout))
            try:
                self._pending += bytes(dev.read(endpoint, want, timeout=millis))
            except usb.core.USBTimeoutError:
                return b""
            except usb.core.USBError as exc:
                raise self._failure("read", exc) from exc
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def close(self) -> None:
        with self._lock:
            dev, self._dev = self._dev, None
            if dev is not None:
                self._give_back(dev)

    def _give_back(self, dev: Any) -> None:
        """Release the interface, re-attach a detached kernel driver, free libusb's handle."""
        try:
            usb.util.release_interface(dev, self.interface)
        except usb.core.USBError:
            pass  # unplugged, or never claimed: nothing to release
        try:
            if self._detached:
                dev.attach_kernel_driver(self.interface)
        except (usb.core.USBError, NotImplementedError):
            pass  # unplugged: the kernel binds its driver again on the next plug
        finally:
            self._detached = False
            usb.util.dispose_resources(dev)

    # extras -----------------------------------------------------------------------
    def strings(self) -> UsbStrings:
        dev = self._require_open()
        return UsbStrings(
            manufacturer=_read_string(dev, dev.iManufacturer),
            product=_read_string(dev, dev.iProduct),
            serial=_read_string(dev, dev.iSerialNumber),
        )

    # internals --------------------------------------------------------------------
    def _require_open(self) -> Any:
        dev = self._dev
        if dev is None:
            raise TransportClosed(f"{self.name}: transport is closed")
        return dev

    def _failure(self, what: str, exc: usb.core.USBError) -> TransportError:
        if is_unplugged(exc):
            self.close()
            return TransportClosed(f"{self.name}: device unplugged during {what}")
        return TransportError(f"{self.name}: {what} failed: {exc}")

    def _find(self) -> Any:
        wanted = self.usb_id

        def serial_matches(dev: Any) -> bool:
            return wanted.serial is None or _read_string(dev, dev.iSerialNumber) == wanted.serial

        try:
            dev = usb.core.find(
                idVendor=wanted.vid, idProduct=wanted.pid, custom_match=serial_matches
            )
        except usb.core.NoBackendError as exc:
            raise TransportError(f"{self.name}: libusb-1.0 is not installed") from exc
        except usb.core.USBError as exc:
            raise TransportError(f"{self.name}: cannot enumerate USB devices: {exc}") from exc
        if dev is None:
            raise TransportClosed(f"{self.name}: no such USB device is connected")
        return dev

    def _claim(self, dev: Any) -> None:
        if self.detach_kernel_driver:
            try:
                if dev.is_kernel_driver_active(self.interface):
                    dev.detach_kernel_driver(self.interface)
                    self._detached = True
            except NotImplementedError:
                pass  # platforms without kernel drivers to detach
        try:
            config = dev.get_active_configuration()
        except usb.core.USBError:
            config = None
        if config is None:
            dev.set_configuration()
            config = dev.get_active_configuration()
        try:
            intf = config[(self.interface, 0)]
        except (usb.core.USBError, IndexError, KeyError) as exc:
            raise TransportError(f"{self.name}: device has no interface {self.interface}") from exc
        usb.util.claim_interface(dev, self.interface)
        self._out = self._endpoint(intf, usb.util.ENDPOINT_OUT, self._want_out)
        self._in = self._endpoint(intf, usb.util.ENDPOINT_IN, self._want_in)
        if self._out is None and self._in is None:
            raise TransportError(f"{self.name}: interface {self.interface} has no bulk endpoints")

    def _endpoint(self, intf: Any, direction: int, wanted: int | None) -> int | None:
        def bulk(ep: Any) -> bool:
            return bool(
                usb.util.endpoint_direction(ep.bEndpointAddress) == direction
                and usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
                and (wanted is None or ep.bEndpointAddress == wanted)
            )

        ep = usb.util.find_descriptor(intf, custom_match=bulk)
        if ep is None:
            if wanted is not None:
                raise TransportError(
                    f"{self.name}: interface {self.interface} has no bulk endpoint 0x{wanted:02x}"
                )
            return None
        if direction == usb.util.ENDPOINT_IN:
            self._in_packet = int(ep.wMaxPacketSize) or 64
        return int(ep.bEndpointAddress)
