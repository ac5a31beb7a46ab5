"""The device side of the link handshake, over any byte channel (a pty master, a socket).

ENQ gets NAK when idle, or ACK and the pending answer again; a frame with a good LRC gets
ACK, runs, and its answer goes out and stays pending until the host ACKs it (a NAK, a
timeout or any other byte leaves it pending for the next ENQ; an ACK that comes after
the timeout still counts); a bad LRC gets NAK.  Link faults (NAK, bad LRC, silence, a
withheld answer) are applied here, before or after the command table runs, never inside
it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from sandbox.registrar.faults import FaultBook, FaultKind
from sandbox.registrar.framing import (
    ACK,
    ENQ,
    NAK,
    STRAY,
    STX,
    FrameError,
    check,
    frame,
    split_command,
)

log = logging.getLogger("posbridge.sandbox.registrar")


class Channel(Protocol):
    def read(self, timeout: float | None) -> bytes | None:
        """Up to a chunk of bytes; b"" on timeout, None when the peer or the server is gone."""

    def write(self, data: bytes) -> None: ...


class Closed(Exception):
    """The channel is gone: the session ends."""


class _Bytes:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._buffer = bytearray()

    def byte(self, timeout: float | None) -> int | None:
        """The next byte, None on timeout."""
        if not self._buffer:
            chunk = self._channel.read(timeout)
            if chunk is None:
                raise Closed
            if not chunk:
                return None
            self._buffer += chunk
        return self._buffer.pop(0)

    def unread(self, byte: int) -> None:
        self._buffer.insert(0, byte)


Execute = Callable[[int, bytes], bytes]


class LinkSession:
    """One host connection; `run()` serves it until the channel closes."""

    def __init__(
        self,
        channel: Channel,
        execute: Execute,
        faults: FaultBook,
        *,
        byte_timeout: float = 0.5,
        ack_timeout: float = 1.0,
        stray_ff: Callable[[], bool] = lambda: False,
    ) -> None:
        self._channel = channel
        self._in = _Bytes(channel)
        self._execute = execute
        self._faults = faults
        self._byte_timeout = byte_timeout
        self._ack_timeout = ack_timeout
        self._stray_ff = stray_ff
        self.pending: bytes | None = None  # the framed answer the host has not ACKed

    def run(self) -> None:
        try:
            while True:
                byte = self._in.byte(None)
                if byte == ENQ:
                    self._enquiry()
                elif byte == STX:
                    self._frame()
                elif byte == ACK and self.pending is not None:
                    self._acknowledged()  # a host too slow for the ACK timeout
                # anything else between frames (a stray NAK, line noise) is dropped
        except Closed:
            return

    def _enquiry(self) -> None:
        if self.pending is None:
            self._channel.write(bytes([NAK]))
            return
        self._channel.write(bytes([ACK]) + self.pending)
        self._await_ack()

    def _frame(self) -> None:
        length = self._in.byte(self._byte_timeout)
        if length is None:
            return  # an STX and then nothing: not a frame
        body = bytearray()
        received: int | None = None
        while len(body) < length:
            byte = self._in.byte(self._byte_timeout)
            if byte is None:
                self._channel.write(bytes([NAK]))
                return
            body.append(byte)
        received = self._in.byte(self._byte_timeout)
        if received is None or length == 0 or not check(length, bytes(body), received):
            self._channel.write(bytes([NAK]))
            return
        if self._faults.take(FaultKind.SILENCE):
            log.debug("fault: silence, frame dropped")
            return
        if self._faults.take(FaultKind.NAK):
            log.debug("fault: NAK instead of ACK")
            self._channel.write(bytes([NAK]))
            return
        try:
            code, data = split_command(bytes(body))
        except FrameError:
            self._channel.write(bytes([NAK]))
            return
        self._channel.write(bytes([ACK]))
        answer = frame(self._execute(code, data))
        self.pending = answer
        if self._faults.take(FaultKind.DROP_ANSWER):
            log.debug("fault: answer withheld (pending)")
            return
        if self._faults.take(FaultKind.BAD_LRC):
            log.debug("fault: answer with a wrong LRC")
            answer = answer[:-1] + bytes([answer[-1] ^ 0x5A])
        self._channel.write(answer)
        self._await_ack()

    def _await_ack(self) -> None:
        byte = self._in.byte(self._ack_timeout)
        if byte == ACK:
            self._acknowledged()
        elif byte is not None and byte != NAK:
            self._in.unread(byte)  # the host moved on (ENQ, a new frame): answer stays pending

    def _acknowledged(self) -> None:
        self.pending = None
        if self._stray_ff():
            self._channel.write(bytes([STRAY]))
