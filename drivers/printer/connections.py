"""Printer connections on python-escpos's Usb, Serial, Network, File and Dummy printers.

python-escpos's connection classes already know how to find a USB printer, detach the kernel
driver, open a serial port or a socket; we keep them and add what a till needs on top: a
Transport contract (errors that name the port, reads with a timeout, "device gone" as
`TransportClosed`), so the printer and its queue can tell "offline" from "bad data".
Each connection only fills in the tiny `_open`/`_raw`/`_read`/`_close` hooks.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy, File, Network, Serial, Usb

from drivers.transport.base import Transport, TransportClosed, TransportError

try:  # pyserial and pyusb are dependencies, but keep the error clear if one is missing
    from serial import SerialException, SerialTimeoutException
except ImportError:  # pragma: no cover
    SerialException = SerialTimeoutException = OSError

try:
    from usb.core import USBError, USBTimeoutError
except ImportError:  # pragma: no cover
    USBError = USBTimeoutError = OSError

# What a failing device raises, whichever library sits under python-escpos.
DEVICE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SerialException,
    USBError,
    DeviceNotFoundError,
    AssertionError,  # python-escpos asserts `self.device` when the device vanished
)
if sys.platform != "win32":
    import termios

    DEVICE_ERRORS += (termios.error,)  # pyserial lets EIO from tcgetattr through as this


class Connection(Transport):
    """Open/close bookkeeping and error translation; subclasses fill in the four hooks."""

    can_read = True  # False for write-only devices: status is UNKNOWN without asking

    def __init__(self, name: str) -> None:
        self.name = name
        self._open = False
        self._io = threading.Lock()

    # hooks -----------------------------------------------------------------------------------
    def _connect(self) -> None:
        raise NotImplementedError

    def _raw(self, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, size: int, timeout: float | None) -> bytes:
        return b""  # write-only connections (a file, a parallel port) never answer

    def _disconnect(self) -> None:
        raise NotImplementedError

    # Transport -------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        with self._io:
            if self._open:
                return
            try:
                self._connect()
            except DEVICE_ERRORS as exc:
                self._quiet_disconnect()
                raise TransportError(f"{self.name}: cannot open: {_reason(exc)}") from exc
            self._open = True

    def write(self, data: bytes) -> None:
        with self._io:
            if not self._open:
                raise TransportClosed(f"{self.name}: not open")
            try:
                self._raw(data)
            except DEVICE_ERRORS as exc:
                self._open = False
                self._quiet_disconnect()
                raise TransportClosed(f"{self.name}: write failed: {_reason(exc)}") from exc

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        with self._io:
            if not self._open:
                raise TransportClosed(f"{self.name}: not open")
            try:
                return self._read(size, timeout)
            except DEVICE_ERRORS as exc:
                self._open = False
                self._quiet_disconnect()
                raise TransportClosed(f"{self.name}: read failed: {_reason(exc)}") from exc

    def close(self) -> None:
        with self._io:
            self._open = False
            self._quiet_disconnect()

    def _quiet_disconnect(self) -> None:
        try:
            self._disconnect()
        except DEVICE_ERRORS:
            pass  # closing a vanished device fails; it is closed either way


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _EscposConnection(Connection):
    """Common shape: one python-escpos printer object, its `_raw` as our write."""

    printer: Any

    def _raw(self, data: bytes) -> None:
        self.printer._raw(data)

    def _disconnect(self) -> None:
        self.printer.close()


class SerialConnection(_EscposConnection):
    """RS-232 or USB-CDC printer (and a pty in tests), through python-escpos's Serial."""

    def __init__(
        self, port: str, baudrate: int = 9600, *, write_timeout: float = 5.0, rtscts: bool = False
    ) -> None:
        super().__init__(f"serial:{port}")
        # dsrdtr=False: a pty and many USB-serial adapters have no DSR line to wait for
        self.printer = Serial(port, baudrate=baudrate, timeout=0.1, dsrdtr=False)
        self.write_timeout = write_timeout
        self.rtscts = rtscts

    def _connect(self) -> None:
        self.printer.open()
        device = self.printer.device
        device.write_timeout = self.write_timeout
        device.rtscts = self.rtscts

    def _raw(self, data: bytes) -> None:
        try:
            self.printer._raw(data)
        except SerialTimeoutException as exc:  # a printer that stopped reading is gone for us
            raise OSError(f"write timed out after {self.write_timeout}s") from exc

    def _read(self, size: int, timeout: float | None) -> bytes:
        device = self.printer.device
        if device.timeout != timeout:  # each change is a tcsetattr: skip when unchanged
            device.timeout = timeout
        return bytes(device.read(size))

    def _disconnect(self) -> None:
        # python-escpos flushes before closing, and a vanished tty fails the flush and leaves
        # the descriptor open; close the pyserial port directly instead.
        device = self.printer._device
        self.printer._device = False
        if device:
            device.close()


class NetworkConnection(_EscposConnection):
    """Raw TCP (port 9100, JetDirect style), through python-escpos's Network."""

    def __init__(self, host: str, port: int = 9100, *, timeout: float = 5.0) -> None:
        super().__init__(f"tcp:{host}:{port}")
        self.printer = Network(host, port, timeout=timeout)
        self.timeout = timeout

    def _connect(self) -> None:
        self.printer.open()

    def _read(self, size: int, timeout: float | None) -> bytes:
        sock: socket.socket = self.printer.device
        sock.settimeout(timeout)
        try:
            data = sock.recv(size)
        except (TimeoutError, BlockingIOError):  # timeout 0 makes the socket non-blocking
            return b""
        finally:
            sock.settimeout(self.timeout)
        if not data:
            raise ConnectionResetError("printer closed the connection")
        return data


USB_MIN_READ_MS = 10


class UsbConnection(_EscposConnection):
    """USB printer-class device, through python-escpos's Usb (pyusb/libusb)."""

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        *,
        in_ep: int = 0x82,
        out_ep: int = 0x01,
        timeout_ms: int = 5000,
    ) -> None:
        super().__init__(f"usb:{vendor_id:04x}:{product_id:04x}")
        self.printer = Usb(vendor_id, product_id, timeout=timeout_ms, in_ep=in_ep, out_ep=out_ep)
        self.in_ep = in_ep

    def _connect(self) -> None:
        self.printer.open()

    def _read(self, size: int, timeout: float | None) -> bytes:
        # libusb: 0 ms means "forever".  Below a few ms, libusb's cancel of the pending bulk-IN
        # transfer raced the reap and the read never returned (seen under umockdev), so a
        # "just poll" read waits USB_MIN_READ_MS instead.
        millis = 0 if timeout is None else max(USB_MIN_READ_MS, int(timeout * 1000))
        try:
            return bytes(self.printer.device.read(self.in_ep, size, millis))
        except USBTimeoutError:
            return b""


class FileConnection(_EscposConnection):
    """A device file (/dev/usb/lp0, a parallel port) or a plain file; write-only."""

    can_read = False

    def __init__(self, path: str) -> None:
        super().__init__(f"file:{path}")
        self.printer = File(path)

    def _connect(self) -> None:
        self.printer.open()


class DummyConnection(_EscposConnection):
    """Keeps what was written (python-escpos's Dummy) and answers requests from a table.

    `replies` maps a request (e.g. DLE EOT 1) to the bytes the "printer" sends back; a request
    missing from it gets no answer, which is how a printer without a back channel behaves.
    """

    def __init__(self, replies: Mapping[bytes, bytes] | None = None, name: str = "dummy") -> None:
        super().__init__(name)
        self.printer = Dummy()
        self.replies: dict[bytes, bytes] = dict(replies or {})
        self._pending = bytearray()
        self.fail_writes: str | None = None  # set to a reason to simulate an unplugged printer

    def _connect(self) -> None:
        return None

    def _raw(self, data: bytes) -> None:
        if self.fail_writes is not None:
            raise OSError(self.fail_writes)
        self.printer._raw(data)
        if data in self.replies:
            self._pending += self.replies[data]

    def _read(self, size: int, timeout: float | None) -> bytes:
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def _disconnect(self) -> None:
        return None

    @property
    def output(self) -> bytes:
        return bytes(self.printer.output)

    def clear(self) -> None:
        self.printer.clear()
