"""Serial ports through pyserial's `serial_for_url`.

One class covers `/dev/ttyUSB0`, `/dev/serial/by-id/...`, `loop://`, `socket://` and
`rfc2217://` because pyserial already speaks all of them; the settings a technician
reads off a scanner's programming sheet (baud, 7E1, RTS/CTS) are one frozen value so
they can come straight from config and be shown in error messages.
"""

from __future__ import annotations

import os
import select
import termios
from dataclasses import dataclass
from typing import Any, Literal

import serial
from serial import serialposix

from drivers.transport.base import Transport, TransportClosed, TransportError, TransportTimeout

Parity = Literal["N", "E", "O", "M", "S"]
_BYTESIZES = (5, 6, 7, 8)
_STOPBITS = (1, 1.5, 2)


@dataclass(frozen=True)
class SerialSettings:
    """Line settings; validated on construction so a bad config fails before any port opens."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: Parity = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False
    dsrdtr: bool = False
    write_timeout: float = 5.0
    exclusive: bool = True  # two readers on one scanner would each get half of every scan

    def __post_init__(self) -> None:
        if not isinstance(self.baudrate, int) or self.baudrate <= 0:
            raise ValueError(f"serial baudrate must be a positive integer, got {self.baudrate!r}")
        if self.bytesize not in _BYTESIZES:
            raise ValueError(f"serial data bits must be one of {_BYTESIZES}, got {self.bytesize!r}")
        if self.parity not in ("N", "E", "O", "M", "S"):
            raise ValueError(f"serial parity must be one of N, E, O, M, S, got {self.parity!r}")
        if self.stopbits not in _STOPBITS:
            raise ValueError(f"serial stop bits must be one of {_STOPBITS}, got {self.stopbits!r}")
        if self.rtscts and self.xonxoff:
            raise ValueError("serial flow control: choose RTS/CTS or XON/XOFF, not both")
        if self.write_timeout <= 0:
            raise ValueError(f"serial write timeout must be positive, got {self.write_timeout!r}")

    @property
    def short(self) -> str:
        """Like "9600 8N1 rtscts", the way programming sheets write it."""
        stop = int(self.stopbits) if self.stopbits != 1.5 else 1.5
        flow = " rtscts" if self.rtscts else (" xonxoff" if self.xonxoff else "")
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}{flow}"


class SerialTransport(Transport):
    """A serial port (or pyserial URL). Any pyserial failure after open means the port is gone."""

    def __init__(self, url: str, settings: SerialSettings | None = None) -> None:
        self.url = url
        self.name = url
        self.settings = settings or SerialSettings()
        self._port: Any = None
        self._timeout: float | None = -1.0  # sentinel: pyserial reconfigures on every change
        self._fd: int | None = None  # set for local ttys, which are read directly

    def open(self) -> None:
        if self._port is not None:
            return
        s = self.settings
        try:
            port = serial.serial_for_url(
                self.url,
                do_not_open=True,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                rtscts=s.rtscts,
                xonxoff=s.xonxoff,
                dsrdtr=s.dsrdtr,
                # pyserial's rfc2217 client refuses write timeouts (NotImplementedError)
                write_timeout=None if self.url.startswith("rfc2217:") else s.write_timeout,
                timeout=0.1,
            )
            if s.exclusive and hasattr(port, "exclusive"):
                port.exclusive = True
            port.open()
        except (serial.SerialException, ValueError, OSError, termios.error) as exc:
            raise TransportError(f"serial {self.url}: cannot open at {s.short}: {exc}") from exc
        self._port = port
        self._timeout = 0.1
        # exact type: subclasses such as spy:// do their own work in read()
        self._fd = port.fd if type(port) is serialposix.Serial else None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _require(self) -> Any:
        if self._port is None:
            raise TransportClosed(f"serial {self.url}: port is closed")
        return self._port

    def _set_timeout(self, timeout: float | None) -> None:
        # Setting pyserial's timeout re-applies termios (and on rfc2217 sends telnet
        # commands), so only touch it when it really changes.
        if timeout != self._timeout:
            self._require().timeout = timeout
            self._timeout = timeout

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        port = self._require()
        if self._fd is not None:
            return self._read_fd(self._fd, size, timeout)
        try:
            self._set_timeout(timeout)
            # read(n) waits for all n bytes; read one, then whatever else is already there,
            # so a scan is handed on as soon as it arrives.
            first = port.read(1)
            if not first or size <= 1:
                return bytes(first)
            waiting = port.in_waiting
            if waiting:  # already buffered, so this read returns at once
                return bytes(first) + bytes(port.read(min(waiting, size - 1)))
            return bytes(first)
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise TransportClosed(f"serial {self.url}: read failed, device gone? ({exc})") from exc

    def _read_fd(self, fd: int, size: int, timeout: float | None) -> bytes:
        # A local tty: pyserial's read() would select, read, ioctl, select and read again
        # for one scan; one select and one read is all it takes, and halves the latency.
        try:
            if not select.select([fd], [], [], timeout)[0]:
                return b""
            data = os.read(fd, size)
        except InterruptedError:
            return b""
        except OSError as exc:
            self.close()
            raise TransportClosed(f"serial {self.url}: read failed, device gone? ({exc})") from exc
        if not data:  # readable but empty: the device is gone (as pyserial reports it)
            self.close()
            raise TransportClosed(f"serial {self.url}: device reports no data, disconnected")
        return data

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise TransportTimeout(
                f"serial {self.url}: write of {len(data)} bytes timed out after "
                f"{self.settings.write_timeout}s (flow control holding?)"
            ) from exc
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise TransportClosed(f"serial {self.url}: write failed, device gone? ({exc})") from exc

    def close(self) -> None:
        port, self._port, self._fd = self._port, None, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError, termios.error):
                pass  # the device is already gone; the fd is released either way

    # modem lines: scanners and printers signal readiness on them -------------------
    def modem_lines(self) -> dict[str, bool]:
        """CTS/DSR/RI/CD as the port reports them; TransportError where it cannot (ptys)."""
        port = self._require()
        try:
            return {"cts": port.cts, "dsr": port.dsr, "ri": port.ri, "cd": port.cd}
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"serial {self.url}: cannot read modem lines: {exc}") from exc

    def set_output_lines(self, *, rts: bool | None = None, dtr: bool | None = None) -> None:
        port = self._require()
        try:
            if rts is not None:
                port.rts = rts
            if dtr is not None:
                port.dtr = dtr
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"serial {self.url}: cannot set RTS/DTR: {exc}") from exc
