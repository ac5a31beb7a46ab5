"""The Shtrih-M link layer: ENQ handshake, ACK/NAK, retries, and the pending-answer replay.

One exchange, host side:
    ENQ -> NAK (idle)            : send the frame; ACK -> read the answer and ACK it;
                                   NAK -> the device saw a bad frame, send it again
    ENQ -> ACK (answer pending)  : read that answer first; if it is ours (the frame was
                                   acknowledged, or sent and the answer is for the same
                                   command: the ACK was lost) it is the reply, else drop it
    answer with a bad LRC        : NAK it, then ENQ again: the device replays it
    silence                      : ENQ again, up to `retries` times
A command the device acknowledged is never sent a second time unless it is `repeatable`
(a status read): a sale or a close sent twice would be two fiscal operations.

Over TCP some devices send a stray 0xFF after the host's ACK; 0xFF is never a control
byte, so it is skipped wherever a control byte or STX is awaited.
"""

from __future__ import annotations

import logging
import time

from drivers.fiscal.base import FiscalLinkError
from drivers.fiscal.shtrih.frames import (
    ACK,
    ENQ,
    NAK,
    STRAY,
    STX,
    FrameError,
    decode_frame,
    encode_frame,
)
from drivers.transport.base import Transport, TransportError

log = logging.getLogger("posbridge.drivers.fiscal.link")


class LinkFailure(FiscalLinkError):
    """The link gave up; `delivered` says whether the device had acknowledged the command."""

    def __init__(self, message: str, *, delivered: bool) -> None:
        super().__init__(message)
        self.delivered = delivered


def masked(body: bytes) -> str:
    """The body as hex with the 4 password bytes hidden (passwords never reach the logs)."""
    head = 2 if body[:1] == b"\xff" else 1
    if len(body) < head + 4:
        return body.hex(" ")
    return " ".join([body[:head].hex(" "), "** ** ** **", body[head + 4 :].hex(" ")]).strip()


class ShtrihLink:
    """Request/reply over any Transport; one exchange at a time (the caller serialises)."""

    def __init__(self, transport: Transport, *, timeout: float = 1.0, retries: int = 3) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 1:
            raise ValueError(f"retries must be at least 1, got {retries}")
        self.transport = transport
        self.timeout = timeout  # for a control byte and between the bytes of a frame
        self.retries = retries
        self._buf = bytearray()

    @property
    def name(self) -> str:
        return self.transport.name

    # raw bytes ---------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self.transport.write(data)
        except TransportError as exc:
            raise LinkFailure(f"registrar port failed: {exc}", delivered=False) from exc

    def _fill(self, timeout: float) -> bool:
        try:
            chunk = self.transport.read(4096, timeout)
        except TransportError as exc:
            raise LinkFailure(f"registrar port failed: {exc}", delivered=False) from exc
        self._buf += chunk
        return bool(chunk)

    def _byte(self, timeout: float) -> int | None:
        """The next byte, or None when nothing came within `timeout`."""
        if not self._buf and not self._fill(timeout):
            return None
        return self._buf.pop(0)

    def _exact(self, size: int, timeout: float) -> bytes | None:
        """`size` bytes, each within `timeout` of the previous one; None on a gap."""
        while len(self._buf) < size:
            if not self._fill(timeout):
                return None
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def _control(self) -> int | None:
        """The next control byte (stray 0xFF skipped), or None after `timeout` of silence."""
        byte = self._byte(self.timeout)
        if byte != STRAY:
            return byte
        deadline = time.monotonic() + self.timeout  # a line stuck at 0xFF is silence too
        while byte == STRAY:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            byte = self._byte(left)
        return byte

    def drain(self) -> None:
        """Drop stale bytes (a stray 0xFF, a late answer the device will replay anyway)."""
        self._buf.clear()
        while self._fill(0.0):
            self._buf.clear()

    def _answer(self, wait: float) -> bytes | None:
        """Read one answer frame and ACK or NAK it; the body, or None (silence / bad LRC)."""
        deadline = time.monotonic() + wait
        while True:
            byte = self._byte(max(deadline - time.monotonic(), 0.0))
            if byte == STX:
                break
            if byte is None or time.monotonic() >= deadline:  # silence, or only noise
                log.debug("%s: no answer within %.1fs", self.name, wait)
                return None
        length = self._exact(1, self.timeout)
        rest = None if length is None else self._exact(length[0] + 1, self.timeout)
        if length is None or rest is None:
            log.debug("%s: answer cut short", self.name)
            return None
        try:
            body = decode_frame(bytes([STX]) + length + rest)
        except FrameError as exc:
            log.warning("%s: %s in an answer; asking for it again", self.name, exc)
            self._write(bytes([NAK]))
            return None
        self._write(bytes([ACK]))
        return body

    # one exchange ---------------------------------------------------------------------
    def exchange(self, body: bytes, *, answer_timeout: float, repeatable: bool = False) -> bytes:
        """Send one request body, return its reply body; LinkFailure when retries run out."""
        frame = encode_frame(body)
        head = body[:2] if body[:1] == b"\xff" else body[:1]
        sent = delivered = False  # the frame went out / the device acknowledged it
        silent = naks = bad = 0
        trace = log.isEnabledFor(logging.DEBUG)
        if trace:
            log.debug("%s: -> %s", self.name, masked(body))

        def give_up(why: str) -> LinkFailure:
            return LinkFailure(f"registrar {self.name}: {why}", delivered=delivered)

        self.drain()
        while True:
            self._write(bytes([ENQ]))
            control = self._control()
            if control == ACK:  # an answer is pending: ours if the frame went through
                # a device still printing our command says ACK and answers when done
                answer = self._answer(answer_timeout if delivered else self.timeout)
                if answer is None:
                    bad += 1
                    if bad > self.retries:
                        raise give_up(f"no readable answer after {bad} tries")
                    continue
                # ours if acknowledged, or sent with its ACK lost on the way (same command)
                if delivered or (sent and answer.startswith(head)):
                    if trace:
                        log.debug("%s: <- %s (replayed)", self.name, answer.hex(" "))
                    return answer
                log.info("%s: dropped a stale answer %s", self.name, answer[:2].hex(" "))
                silent += 1
                if silent > self.retries:
                    raise give_up("keeps sending stale answers")
                continue
            if control != NAK:
                silent += 1
                if silent > self.retries:
                    what = "no answer" if control is None else f"unexpected byte 0x{control:02X}"
                    raise give_up(f"{what} to ENQ after {silent} tries (powered off? cable?)")
                continue
            # idle: the device holds no answer
            if delivered and not repeatable:
                raise give_up("acknowledged the command but lost its answer")
            self._write(frame)
            sent = True
            reply = self._control()
            if reply == NAK:
                naks += 1
                if naks > self.retries:
                    raise give_up(f"rejected the frame {naks} times (NAK)")
                continue
            if reply != ACK:
                silent += 1
                if silent > self.retries:
                    raise give_up(f"did not acknowledge the frame after {silent} tries")
                continue
            delivered = True
            answer = self._answer(answer_timeout)
            if answer is not None:
                if trace:
                    log.debug("%s: <- %s", self.name, answer.hex(" "))
                return answer
            bad += 1
            if bad > self.retries:
                raise give_up(f"no readable answer after {bad} tries")
