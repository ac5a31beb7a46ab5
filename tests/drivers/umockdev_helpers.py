"""umockdev stand-ins for the USB printer, the keyboard-wedge scanner and the CDC tty.

The machines that run the tests have no USB bus and no uinput.  umockdev's preload
library gives the process a fake /sys and /dev, and answers ioctls on the fake device
nodes from the handlers below, so pyusb/libusb, python-evdev, pyudev and pyserial run
their real code paths against them.  Only what the kernel would do is emulated here:

* `FakeUsbPrinter` speaks usbdevfs (URB submit/reap/discard) for one ESC/POS printer.
  Bulk IN URBs stay pending until the printer has something to say, as a real device NAKs,
  so a read without an answer really times out (libusb discards the URB).  Each client
  connection has its own URB queues (a shared queue crashed libusb).
* `FakeEvdevKeyboard` answers the EVIOC* ioctls python-evdev asks and keeps the grab state;
  key events are `struct input_event` records the test writes to the device's other end.

Tests that use these must run under `umockdev-wrapper`; `require_umockdev()` skips them
with the reason otherwise.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

DATA = Path(__file__).parent / "data"

PRINTER_SYSPATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"
PRINTER_DEVNODE = "/dev/bus/usb/001/002"
KBD_SYSPATH = (
    "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:0C2E:0B61.0001/input/input7/event7"
)
KBD_DEVNODE = "/dev/input/event7"
ACM_SYSPATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/tty/ttyACM0"
ACM_DEVNODE = "/dev/ttyACM0"


def _missing(reason: str) -> NoReturn:
    """Skip here, fail where CI requires every stand-in (POSBRIDGE_REQUIRE_STAND_INS)."""
    try:
        from tests.stand_ins import missing
    except ImportError:
        pytest.skip(reason)
    missing(reason)


def require_umockdev() -> Any:
    """The UMockdev GI module, or skip: these tests need the preload library and bindings."""
    if "umockdev" not in os.environ.get("LD_PRELOAD", ""):
        _missing(
            "needs umockdev's preload library: run "
            "`umockdev-wrapper .venv/bin/python -m pytest -m umockdev tests/drivers`"
        )
    try:
        import gi

        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev
    except (ImportError, ValueError) as exc:
        _missing(
            f"umockdev GI bindings unavailable ({exc}): apt-get install "
            "gir1.2-umockdev-1.0 and pip install 'PyGObject<3.51'"
        )
    return UMockdev


def require_libusb() -> None:
    """pyusb needs the libusb-1.0 shared library (apt: libusb-1.0-0)."""
    import usb.backend.libusb1

    if usb.backend.libusb1.get_backend() is None:
        _missing("pyusb finds no libusb-1.0 backend: apt-get install libusb-1.0-0")


_testbed: Any = None


def shared_testbed() -> Any:
    """One Testbed per process: libusb must first run inside it, and it stays for all tests.

    Each test adds the devices it needs and removes them again (`remove_all`).
    """
    global _testbed
    umockdev = require_umockdev()
    if _testbed is None:
        _testbed = umockdev.Testbed.new()
    return _testbed


_added: list[str] = []  # syspaths in the order they were added
_attached: set[str] = set()  # device nodes with an ioctl handler


def add_description(tb: Any, name: str, replace: dict[str, str] | None = None) -> None:
    text = (DATA / name).read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    assert tb.add_from_string(text), name
    _added.extend("/sys" + line[3:].strip() for line in text.splitlines() if line.startswith("P: "))


def attach(tb: Any, devnode: str, handler: Any) -> None:
    tb.attach_ioctl(devnode, handler)
    _attached.add(devnode)


def remove(tb: Any, syspath: str) -> None:
    """Remove a device and everything below it, children first (umockdev leaves their links)."""
    for path in sorted(
        (p for p in _added if p == syspath or p.startswith(syspath + "/")), key=len, reverse=True
    ):
        _added.remove(path)
        if os.path.exists(path):
            tb.uevent(path, "remove")  # as the kernel announces it; libusb and pyudev listen
            tb.remove_device(path)


def detach(tb: Any, devnode: str) -> None:
    if devnode in _attached:
        _attached.discard(devnode)
        tb.detach_ioctl(devnode)


def remove_all(tb: Any) -> None:
    """Empty the testbed's /sys and /dev again so the next test starts on an empty machine."""
    for devnode in list(_attached):
        detach(tb, devnode)
    for path in sorted(_added, key=len, reverse=True):
        remove(tb, path)
    root = Path(tb.get_root_dir())
    for link_dir in ("dev/serial/by-id", "dev/input/by-id"):
        for link in (root / link_dir).glob("*") if (root / link_dir).is_dir() else []:
            link.unlink()


def add_by_id_link(tb: Any, link: str, target: str) -> None:
    """udev's persistent names (/dev/serial/by-id/..., /dev/input/by-id/...) in the testbed."""
    path = Path(tb.get_root_dir()) / link.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, os.path.dirname(link)))


# ---------------------------------------------------------------------------------------
# usbdevfs


def _ioc(direction: int, kind: str, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


_R, _W = 2, 1
SUBMITURB = _ioc(_R, "U", 10, 56)
DISCARDURB = _ioc(0, "U", 11, 0)
REAPURB = _ioc(_W, "U", 12, 8)
REAPURBNDELAY = _ioc(_W, "U", 13, 8)
SETCONFIG = _ioc(_R, "U", 5, 4)
GETDRIVER = _ioc(_W, "U", 8, 260)
USBIOCTL = _ioc(_R | _W, "U", 18, 16)  # struct usbdevfs_ioctl {int ifno, code; void *data}
DISCONNECT, CONNECT = _ioc(0, "U", 22, 0), _ioc(0, "U", 23, 0)
CLAIM = _ioc(_R, "U", 15, 4)
RELEASE = _ioc(_R, "U", 16, 4)
RESET = _ioc(0, "U", 20, 0)
CLEAR_HALT = _ioc(_R, "U", 21, 4)
GETCAPS = _ioc(_R, "U", 26, 4)
DISC_CLAIM = _ioc(_R, "U", 27, 264)
GET_SPEED = _ioc(0, "U", 31, 0)
_URB_CONTROL, _URB_BULK = 2, 3
_CAPS = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20  # as a current xHCI kernel: reap after disconnect
_EPIPE, _ENOENT = 32, 2


@dataclass
class _Client:
    pending_in: list[Any] = field(default_factory=list)  # bulk IN URBs the device NAKs for now
    done: list[Any] = field(default_factory=list)  # completed URBs waiting to be reaped


class FakeUsbPrinter:
    """Factory for the GObject subclass, so importing this module never needs gi."""

    def __new__(cls, **kwargs: Any) -> Any:
        return _printer_class()(**kwargs)


_printer_cls: Any = None


def _printer_class() -> Any:
    global _printer_cls
    if _printer_cls is not None:
        return _printer_cls
    umockdev = require_umockdev()

    class _FakeUsbPrinter(umockdev.IoctlBase):  # type: ignore[misc,name-defined]
        def __init__(
            self,
            strings: dict[int, str] | None = None,
            device_id: bytes = b"MFG:EPSON;CMD:ESCPOS;MDL:TM-T20;CLS:PRINTER;",
            answers: dict[bytes, bytes] | None = None,
            kernel_driver: str | None = None,
        ) -> None:
            super().__init__()
            self.strings = strings or {1: "EPSON", 2: "TM-T20", 3: "ABC123"}
            self.device_id = device_id
            self.answers = answers or {}
            self.kernel_driver = kernel_driver  # e.g. "usblp" bound to interface 0
            self.driver_log: list[str] = []
            self.received = bytearray()
            self.to_host = bytearray()
            self.unplugged = False
            self.requests: list[int] = []
            self.in_urb_waiting = threading.Event()
            self._clients: dict[Any, _Client] = {}
            self._lock = threading.Lock()

        def answer(self, data: bytes) -> None:
            """Queue bytes the printer sends on bulk IN."""
            with self._lock:
                self.to_host += data

        def unplug(self) -> None:
            """As the kernel does: in-flight URBs end with ESHUTDOWN, later ioctls get ENODEV."""
            with self._lock:
                self.unplugged = True
                for state in self._clients.values():
                    for urb in state.pending_in:
                        urb.update(4, struct.pack("i", -errno.ESHUTDOWN))
                        urb.update(28, struct.pack("i", 0))
                    state.done += state.pending_in
                    state.pending_in.clear()

        def do_client_vanished(self, client: Any) -> None:
            with self._lock:
                self._clients.pop(client, None)

        def do_handle_ioctl(self, client: Any) -> bool:
            req = client.get_request()
            with self._lock:
                self.requests.append(req)
                state = self._clients.setdefault(client, _Client())
                if self.unplugged and not (req in (REAPURB, REAPURBNDELAY) and state.done):
                    client.complete(-1, errno.ENODEV)
                    return True
                self._dispatch(client, req, state)
            return True

        def _dispatch(self, client: Any, req: int, state: _Client) -> None:
            if req == SUBMITURB:
                self._submit(client.get_arg().resolve(0, 56), state)
                client.complete(0, 0)
            elif req in (REAPURB, REAPURBNDELAY):
                self._fill_pending(state)
                if state.done:
                    client.get_arg().resolve(0, 8).set_ptr(0, state.done.pop(0))
                    client.complete(0, 0)
                else:
                    client.complete(-1, errno.EAGAIN)
            elif req == DISCARDURB:
                # The argument is the URB's address.  Not from `.data`: the GI binding cuts
                # that byte array at its first zero byte.  resolve() reads all 8 in C.
                addr = client.get_arg().resolve(0, 56).client_addr
                for urb in state.pending_in:
                    if urb.client_addr == addr:
                        state.pending_in.remove(urb)
                        urb.update(4, struct.pack("i", -_ENOENT))
                        state.done.append(urb)
                        client.complete(0, 0)
                        return
                client.complete(-1, errno.EINVAL)
            elif req == GETCAPS:
                client.get_arg().resolve(0, 4).update(0, struct.pack("I", _CAPS))
                client.complete(0, 0)
            elif req == GETDRIVER:
                if self.kernel_driver is None:
                    client.complete(-1, errno.ENODATA)  # no kernel driver bound
                else:
                    arg = client.get_arg().resolve(0, 260)
                    arg.update(4, self.kernel_driver.encode() + b"\0")
                    client.complete(0, 0)
            elif req == USBIOCTL:
                code = struct.unpack_from("ii", bytes(client.get_arg().resolve(0, 16).retrieve()))[
                    1
                ]
                if code == DISCONNECT and self.kernel_driver is not None:
                    self.driver_log.append(f"detach {self.kernel_driver}")
                    self._detached_driver, self.kernel_driver = self.kernel_driver, None
                    client.complete(0, 0)
                elif code == CONNECT and getattr(self, "_detached_driver", None):
                    self.kernel_driver = self._detached_driver
                    self.driver_log.append(f"attach {self.kernel_driver}")
                    client.complete(0, 0)
                else:
                    client.complete(-1, errno.ENODATA)
            elif req == CLAIM and self.kernel_driver is not None:
                client.complete(-1, errno.EBUSY)  # the kernel driver holds the interface
            elif req in (CLAIM, RELEASE, SETCONFIG, CLEAR_HALT, RESET, DISC_CLAIM):
                client.complete(0, 0)
            elif req == GET_SPEED:
                client.complete(2, 0)  # USB_SPEED_FULL
            else:
                client.complete(-1, errno.ENOTTY)

        def _submit(self, urb: Any, state: _Client) -> None:
            raw = bytes(urb.retrieve())
            kind, endpoint = raw[0], raw[1]
            length = struct.unpack_from("i", raw, 24)[0]
            buf = urb.resolve(16, length)
            if kind == _URB_BULK and endpoint & 0x80:
                state.pending_in.append(urb)
                self.in_urb_waiting.set()
                self._fill_pending(state)
                return
            status, actual = 0, length
            if kind == _URB_BULK:
                data = bytes(buf.retrieve())
                self.received += data
                for trigger, answer in self.answers.items():
                    if data.endswith(trigger):
                        self.to_host += answer
            elif kind == _URB_CONTROL:
                reply = self._control(bytes(buf.retrieve()))
                if reply is None:
                    status, actual = -_EPIPE, 0  # STALL
                else:
                    buf.update(8, reply)
                    actual = len(reply)
            urb.update(4, struct.pack("i", status))
            urb.update(28, struct.pack("i", actual))
            state.done.append(urb)

        def _fill_pending(self, state: _Client) -> None:
            while state.pending_in and self.to_host:
                urb = state.pending_in.pop(0)
                length = struct.unpack_from("i", bytes(urb.retrieve()), 24)[0]
                chunk = bytes(self.to_host[:length])
                del self.to_host[: len(chunk)]
                urb.resolve(16, length).update(0, chunk)
                urb.update(4, struct.pack("i", 0))
                urb.update(28, struct.pack("i", len(chunk)))
                state.done.append(urb)

        def _control(self, setup_and_data: bytes) -> bytes | None:
            request_type, request, value, _index, length = struct.unpack_from(
                "<BBHHH", setup_and_data
            )
            reply: bytes | None = None
            if request == 6 and value >> 8 == 3:  # GET_DESCRIPTOR(string)
                index = value & 0xFF
                if index == 0:
                    reply = b"\x04\x03\x09\x04"  # langid en-US
                elif index in self.strings:
                    text = self.strings[index].encode("utf-16-le")
                    reply = bytes([2 + len(text), 3]) + text
            elif request_type == 0xA1 and request == 0:  # printer class GET_DEVICE_ID
                reply = struct.pack(">H", len(self.device_id) + 2) + self.device_id
            elif request_type == 0xA1 and request == 1:  # GET_PORT_STATUS: selected, no error
                reply = b"\x18"
            elif request_type & 0x80 == 0:
                reply = b""
            return None if reply is None else reply[:length]

    _printer_cls = _FakeUsbPrinter
    return _printer_cls


def plug_printer(tb: Any, **kwargs: Any) -> Any:
    """Add the printer to the testbed and answer its usbdevfs ioctls; returns the handler."""
    require_libusb()  # after the testbed exists: libusb must start inside it
    add_description(tb, "printer.umockdev")
    handler = FakeUsbPrinter(**kwargs)
    attach(tb, PRINTER_DEVNODE, handler)
    return handler


def unplug_printer(tb: Any, handler: Any) -> None:
    handler.unplug()
    remove(tb, PRINTER_SYSPATH)
    detach(tb, PRINTER_DEVNODE)


TWIN_SYSPATH = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-4"
TWIN_DEVNODE = "/dev/bus/usb/001/004"


def plug_twin_printer(tb: Any, serial: str, **kwargs: Any) -> Any:
    """A second printer of the same model (same VID:PID) on port 1-4, told apart by `serial`."""
    require_libusb()
    add_description(
        tb,
        "printer.umockdev",
        {
            "/1-1": "/1-4",
            "usb/001/002": "usb/001/004",
            "DEVNUM=002": "DEVNUM=004",
            "devnum=2": "devnum=4",
            "MINOR=1": "MINOR=3",
            "dev=189:1": "dev=189:3",
            "ABC123": serial,
        },
    )
    handler = FakeUsbPrinter(strings={1: "EPSON", 2: "TM-T20", 3: serial}, **kwargs)
    attach(tb, TWIN_DEVNODE, handler)
    return handler


# ---------------------------------------------------------------------------------------
# evdev

EV_SYN, EV_KEY, EV_MSC, EV_REP = 0x00, 0x01, 0x04, 0x14
EVIOCGRAB_NR = 0x90
_KEYBOARD_KEYS = range(1, 128)  # KEY_ESC .. the main block: digits, letters, enter, shift


def input_event(ev_type: int, code: int, value: int, when: float | None = None) -> bytes:
    """One `struct input_event` as the kernel writes it on 64-bit Linux."""
    now = time.time() if when is None else when
    return struct.pack("llHHi", int(now), int((now % 1) * 1_000_000), ev_type, code, value)


def key_strokes(codes: Iterable[int]) -> bytes:
    """Press and release each key, each followed by SYN_REPORT, like a scanner types."""
    out = bytearray()
    for code in codes:
        for value in (1, 0):
            out += input_event(EV_KEY, code, value) + input_event(EV_SYN, 0, 0)
    return bytes(out)


def _bits(numbers: Iterable[int], size: int) -> bytes:
    out = bytearray(size)
    for n in numbers:
        if n // 8 < size:
            out[n // 8] |= 1 << (n % 8)
    return bytes(out)


class FakeEvdevKeyboard:
    """Factory for the GObject subclass, so importing this module never needs gi."""

    def __new__(cls, **kwargs: Any) -> Any:
        return _keyboard_class()(**kwargs)


_keyboard_cls: Any = None


def _keyboard_class() -> Any:
    global _keyboard_cls
    if _keyboard_cls is not None:
        return _keyboard_cls
    umockdev = require_umockdev()

    class _FakeEvdevKeyboard(umockdev.IoctlBase):  # type: ignore[misc,name-defined]
        def __init__(
            self,
            name: str = "Honeywell Imaging Scanner",
            ids: tuple[int, int, int, int] = (0x03, 0x0C2E, 0x0B61, 0x0111),
            keys: Iterable[int] = _KEYBOARD_KEYS,
        ) -> None:
            super().__init__()
            self.name = name
            self.ids = ids
            self.keys = tuple(keys)
            self.grabbed_by: Any = None
            self.grab_calls: list[int] = []
            self.unplugged = False
            self._lock = threading.Lock()

        def do_client_vanished(self, client: Any) -> None:
            with self._lock:
                if self.grabbed_by is client:
                    self.grabbed_by = None  # the kernel drops a grab when its fd closes

        def do_handle_ioctl(self, client: Any) -> bool:
            req = client.get_request()
            kind, nr, size = (req >> 8) & 0xFF, req & 0xFF, (req >> 16) & 0x3FFF
            with self._lock:
                if self.unplugged:
                    client.complete(-1, errno.ENODEV)
                elif kind != ord("E"):
                    client.complete(-1, errno.ENOTTY)
                elif nr == EVIOCGRAB_NR:
                    self._grab(client)
                else:
                    self._query(client, nr, size)
            return True

        def _grab(self, client: Any) -> None:
            value = int.from_bytes(bytes(client.get_arg().data), "little")
            self.grab_calls.append(value)
            if value:
                if self.grabbed_by is not None:
                    client.complete(-1, errno.EBUSY)
                    return
                self.grabbed_by = client
            elif self.grabbed_by is client:
                self.grabbed_by = None
            else:
                client.complete(-1, errno.EINVAL)
                return
            client.complete(0, 0)

        def _reply(self, client: Any, size: int, payload: bytes, result: int | None = None) -> None:
            data = payload[:size]
            if data:
                client.get_arg().resolve(0, size).update(0, data)
            client.complete(len(data) if result is None else result, 0)

        def _query(self, client: Any, nr: int, size: int) -> None:
            if nr == 0x01:  # EVIOCGVERSION
                self._reply(client, size, struct.pack("i", 0x010001), 0)
            elif nr == 0x02:  # EVIOCGID
                self._reply(client, size, struct.pack("4H", *self.ids), 0)
            elif nr == 0x03:  # EVIOCGREP: delay, period
                self._reply(client, size, struct.pack("2I", 250, 33), 0)
            elif nr == 0x06:  # EVIOCGNAME
                self._reply(client, size, self.name.encode() + b"\0")
            elif nr == 0x07:  # EVIOCGPHYS
                self._reply(client, size, b"usb-0000:00:14.0-2/input0\0")
            elif nr in (0x08, 0x09):  # EVIOCGUNIQ, EVIOCGPROP
                self._reply(client, size, b"\0" if nr == 0x08 else bytes(size))
            elif 0x18 <= nr <= 0x1B:  # EVIOCGKEY/LED/SND/SW: nothing pressed or lit
                self._reply(client, size, bytes(size))
            elif nr == 0x20:  # EVIOCGBIT(0): event types
                self._reply(client, size, _bits((EV_SYN, EV_KEY, EV_MSC, EV_REP), size))
            elif nr == 0x20 + EV_KEY:
                self._reply(client, size, _bits(self.keys, size))
            elif nr == 0x20 + EV_MSC:
                self._reply(client, size, _bits((4,), size))  # MSC_SCAN
            elif 0x20 < nr < 0x40:  # other event types: no codes
                self._reply(client, size, bytes(size))
            elif nr == 0x84:  # EVIOCGEFFECTS
                self._reply(client, size, struct.pack("i", 0), 0)
            else:
                client.complete(-1, errno.ENOTTY)

    _keyboard_cls = _FakeEvdevKeyboard
    return _keyboard_cls


@dataclass
class Plugged:
    """A device node in the testbed; `fd` is its other end (the pty master) if it has one."""

    devnode: str
    syspath: str
    fd: int
    handler: Any = None


_node_numbers = iter(range(7, 10_000))


def plug_keyboard(tb: Any, **kwargs: Any) -> Plugged:
    """Add the scanner under a fresh event number: umockdev cannot reuse a pty device name."""
    n = next(_node_numbers)
    add_description(
        tb,
        "scanner_kbd.umockdev",
        {
            "event7": f"event{n}",
            "input7": f"input{n}",
            "0003:0C2E:0B61.0001": f"0003:0C2E:0B61.{n:04X}",
            "MINOR=71": f"MINOR={64 + n}",
            "13:71": f"13:{64 + n}",
        },
    )
    devnode = f"/dev/input/event{n}"
    syspath = (
        KBD_SYSPATH.replace("event7", f"event{n}")
        .replace("input7", f"input{n}")
        .replace("0B61.0001", f"0B61.{n:04X}")
    )
    handler = FakeEvdevKeyboard(**kwargs)
    attach(tb, devnode, handler)
    return Plugged(devnode, syspath, tb.get_dev_fd(devnode), handler)


def unplug_keyboard(tb: Any, keyboard: Plugged) -> None:
    """Gone as the kernel shows it: ioctls fail, and the node's reader hits end of file."""
    keyboard.handler.unplugged = True
    root = Path(tb.get_root_dir())
    pty = os.readlink(root / keyboard.devnode.lstrip("/"))  # e.g. /dev/pts/3
    remove(tb, "/".join(keyboard.syspath.split("/")[:-5]))  # the whole USB device
    detach(tb, keyboard.devnode)
    os.close(keyboard.fd)  # the pty master behind the node: the testbed keeps no other copy
    # The kernel will hand out this pty number again; umockdev's map entry for it would
    # then collide (it asserts), so drop the entry with the pty.
    (root / "dev" / ".ptymap" / pty.replace("/", "_")).unlink(missing_ok=True)


def plug_acm(tb: Any) -> Plugged:
    """Add the CDC-ACM serial scanner under a fresh ttyACM number."""
    n = next(_node_numbers)
    add_description(
        tb,
        "scanner_acm.umockdev",
        {
            "ttyACM0": f"ttyACM{n}",
            "MINOR=0": f"MINOR={n}",
            "166:0": f"166:{n}",
        },
    )
    devnode = f"/dev/ttyACM{n}"
    return Plugged(devnode, ACM_SYSPATH.replace("ttyACM0", devnode[5:]), tb.get_dev_fd(devnode))


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------------------
# A reader process.  python-evdev calls ioctl() holding the GIL, and the handlers above are
# Python running in the testbed's thread of this process, so an in-process reader would
# deadlock.  The reader runs in a child process instead, under the same testbed (it
# inherits LD_PRELOAD and UMOCKDEV_DIR), as posbridge itself is a separate process.


class EvdevReaderProcess:
    """Runs EvdevInputTransport in a child; commands and answers are JSON lines."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        import subprocess
        import sys

        root = str(Path(__file__).resolve().parents[2])
        env = dict(
            os.environ,
            PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
            # Testbed.new() set this with g_setenv, which os.environ does not see
            UMOCKDEV_DIR=shared_testbed().get_root_dir(),
        )
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "evdev-reader", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.opened = self._answer()

    def _answer(self) -> dict[str, Any]:
        import json
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.proc.kill()
            raise AssertionError(f"evdev reader gave no answer within {self.timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"evdev reader died (exit code {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(self, what: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(what + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("close")
            except (AssertionError, BrokenPipeError):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EvdevReaderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _evdev_reader_main(path: str) -> None:
    """The child: open (grab), then on "keys" read until Enter is released, on "close" stop."""
    import json
    import sys

    from drivers.transport import TransportError
    from drivers.transport.evdev_input import EvdevInputTransport

    def say(**answer: Any) -> None:
        print(json.dumps(answer), flush=True)

    wedge = EvdevInputTransport(path)
    try:
        wedge.open()
    except TransportError as exc:
        say(error=type(exc).__name__, message=str(exc))
        return
    say(name=wedge.device_name)
    for line in sys.stdin:
        command = line.strip()
        if command == "close":
            wedge.close()
            say(closed=True)
            return
        if command == "scan":
            say(**_scan_once(wedge))
            continue
        if command.startswith("keys"):
            timeout = float(command.split()[1]) if " " in command else 5.0
            events: list[list[float]] = []
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    events += [
                        [e.code, e.value, e.timestamp] for e in wedge.read_key_events(timeout=0.2)
                    ]
                    if events and events[-1][:2] == [28, 0]:  # KEY_ENTER released
                        break
            except TransportError as exc:
                say(
                    events=events, error=type(exc).__name__, message=str(exc), is_open=wedge.is_open
                )
                continue
            say(events=events, is_open=wedge.is_open)


def _scan_once(wedge: Any) -> dict[str, Any]:
    """One barcode through pump_keys into the keyboard-wedge scanner device."""
    from drivers.device import DataEvent, Event
    from drivers.scanner.wedge import WedgeScanner
    from drivers.transport import TransportError
    from drivers.transport.evdev_input import pump_keys

    scanner = WedgeScanner("wedge")
    scanner.open()
    scanner.claim()
    scanner.enable()
    scans: list[str] = []
    stop = threading.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, DataEvent):
            scans.append(event.data.text)
            stop.set()

    scanner.add_listener(on_event)
    timer = threading.Timer(5.0, stop.set)
    timer.start()
    try:
        pump_keys(wedge, scanner.feed_key, scanner.poll, stop)
    except TransportError as exc:
        return {"scans": scans, "error": type(exc).__name__}
    finally:
        timer.cancel()
    return {"scans": scans}


def _evdev_wedge_main(path: str) -> None:
    """The child: EvdevWedge feeding a WedgeScanner; prints each scan and power change."""
    import json
    import sys

    from drivers.device import DataEvent, Event, StatusEvent
    from drivers.reconnect import Backoff
    from drivers.scanner.wedge import WedgeScanner
    from drivers.wedge_reader import EvdevWedge

    def say(**answer: Any) -> None:
        print(json.dumps(answer), flush=True)

    def on_event(event: Event) -> None:
        if isinstance(event, DataEvent):
            say(scan=event.data.text)
        elif isinstance(event, StatusEvent):
            say(power=event.power.value)

    scanner = WedgeScanner("wedge")
    scanner.add_listener(on_event)
    scanner.open()
    scanner.claim()
    scanner.enable()
    feeder = EvdevWedge(scanner, path, backoff=Backoff(0.05, 0.2))
    feeder.start()
    sys.stdin.readline()  # any line: stop
    feeder.stop()
    say(stopped=True)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["evdev-reader"]:
        _evdev_reader_main(sys.argv[2])
    elif sys.argv[1:2] == ["evdev-wedge"]:
        _evdev_wedge_main(sys.argv[2])
