"""The registrar's side of the Shtrih-M link, played towards a POS that cannot be changed.

The POS believes it talks to its registrar, so it must see the device's link behaviour:
ENQ gets NAK when nothing is pending, or ACK and the pending answer; a frame with a good
LRC gets ACK, a bad one NAK.  An answer stays pending until the POS ACKs it (a NAK or
silence leaves it for the next ENQ, as the device does; replaying it at once on NAK would
collide with the ENQ every client sends next).  This module only reads and frames bytes;
what to do with a frame is the relay's business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from drivers.fiscal.shtrih.frames import ACK, ENQ, NAK, STX, lrc
from drivers.transport.base import Transport

log = logging.getLogger("posbridge.passthrough.registrar")


class Kind(Enum):
    ENQ = "enq"
    ACK = "ack"
    NAK = "nak"
    FRAME = "frame"  # a whole frame with a good LRC: `body` holds it
    BAD_FRAME = "bad_frame"  # a bad LRC, an empty body, or a frame cut short: NAK it


@dataclass(frozen=True)
class Incoming:
    kind: Kind
    body: bytes = b""  # the frame's body (CMD PWD DATA) for FRAME
    raw: bytes = b""  # the frame exactly as the POS sent it, for FRAME


_CONTROL = {ENQ: Kind.ENQ, ACK: Kind.ACK, NAK: Kind.NAK}


class PosLink:
    """Reads the POS's control bytes and frames; one reader thread, any number of writers.

    `byte_timeout` is the longest gap allowed inside a frame, as on the device.
    """

    def __init__(self, transport: Transport, *, byte_timeout: float = 0.5) -> None:
        self.transport = transport
        self.byte_timeout = byte_timeout
        self._buf = bytearray()

    def _byte(self, timeout: float | None) -> int | None:
        if not self._buf:
            chunk = self.transport.read(4096, timeout)
            if not chunk:
                return None
            self._buf += chunk
        return self._buf.pop(0)

    def receive(self, timeout: float | None) -> Incoming | None:
        """The next thing the POS said, or None after `timeout` of silence.

        Bytes that are neither a control byte nor a frame's start (line noise, a stray
        0xFF) are dropped, as the device drops them.
        """
        while True:
            byte = self._byte(timeout)
            if byte is None:
                return None
            kind = _CONTROL.get(byte)
            if kind is not None:
                return Incoming(kind)
            if byte == STX:
                return self._frame()
            log.debug("%s: dropped a stray byte 0x%02X from the POS", self.transport.name, byte)

    def _frame(self) -> Incoming | None:
        length = self._byte(self.byte_timeout)
        if length is None:
            return None  # an STX and then nothing: not a frame
        body = bytearray()
        while len(body) < length:
            byte = self._byte(self.byte_timeout)
            if byte is None:
                return Incoming(Kind.BAD_FRAME)
            body.append(byte)
        check = self._byte(self.byte_timeout)
        if check is None or length == 0 or lrc(bytes(body)) != check:
            return Incoming(Kind.BAD_FRAME)
        raw = bytes([STX, length]) + body + bytes([check])
        return Incoming(Kind.FRAME, bytes(body), raw)

    def send(self, data: bytes) -> None:
        self.transport.write(data)
