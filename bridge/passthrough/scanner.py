"""The scanner pass-through: the POS reads a virtual serial scanner, we read the real one.

Everything the scanner sends reaches the POS byte for byte, in order, with its suffix,
except loyalty cards, which are taken for the cheque (`card_presented`) and passed on only
with `pass_cards`.  A card can only be told from a product once its scan is complete, so
each scan is held until its suffix arrives (the relay's whole added latency) and then
written in one piece; the stream is cut exactly as the scanner driver cuts it
(`drivers.scanner.framing.Framer`, including its idle timeout for a scan whose suffix never
came), and sorted exactly as the service sorts a scan (`make_scan` + `classify`).  A
scanner without a suffix (idle framing) is relayed too, but each of its scans then waits
out the idle gap before the POS gets it.

What the framer does not hand over as a scan still reaches the POS: a half scan (cut by
the idle timeout or a prefix, or left behind when the scanner vanished), a stray LF of a
CRLF scanner set up as CR, garbage.  The bytes the framer consumed are kept aside and
matched back to its frames, so its clean-ups (the dropped LF) never change what the POS
gets.  Anything we add fails open: a classification or session error passes the scan on.

The device side reconnects the way every scanner does (`drivers.reconnect.ReaderLoop`):
when the port vanishes the relay reports offline and reopens it with backoff, while the
POS keeps its virtual port and simply hears nothing.  Bytes the POS writes to its
"scanner" (beep, enable, trigger commands) go to the real one on a second thread.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from bridge.barcodes import BarcodeSettings, UnusableInput, classify
from drivers.device import PowerState
from drivers.masking import mask_pan, mask_text, shape
from drivers.reconnect import Backoff, ReaderLoop
from drivers.scanner.framing import Frame, Framer
from drivers.scanner.scan import ScanOptions, make_scan
from drivers.transport.base import Transport, TransportError
from drivers.virtual_port import PtyPort

log = logging.getLogger("posbridge.passthrough.scanner")

CARD_SOURCE = "scanner-relay"
COUNTERS = (
    "scans",
    "cards",
    "cards_passed",
    "unrecognised",
    "half_scans",
    "failures",
    "pos_write_failures",
    "to_device",
    "to_device_dropped",
    "offline",
    "stale_dropped",
)
_LF = b"\n"
UNREAD_TIMEOUT = 10.0  # seconds a scan waits in the POS's pty before it is dropped


class ScanSink(Protocol):
    """What the relay tells the register (bridge.passthrough.session.PassthroughSession)."""

    def card_presented(self, number: str, source: str) -> object: ...

    def barcode_scanned(self, code: str) -> object: ...


class ScannerRelay:
    """Relays a real scanner (`device`) to the POS's virtual scanner port (`pos`).

    `device` is the real scanner's transport, reopened after it vanishes, or a factory that
    builds a fresh one for every attempt (`bridge.devices.build.transport_factory`).  The
    relay owns both ports: `stop()` closes them.

    Counters (`counters`): scans (product scans passed), cards (captured), cards_passed,
    unrecognised (garbage passed), half_scans (incomplete scans passed), failures (ours:
    classification or session errors; the bytes passed anyway), pos_write_failures (bytes
    the POS did not take, dropped), to_device / to_device_dropped (POS -> scanner writes),
    offline (times the scanner went away), stale_dropped (bytes the POS left unread for
    `unread_timeout` seconds on a pty, dropped: it keeps its port closed, and a real port
    would have lost those scans rather than hand it old products when it opens).
    """

    def __init__(
        self,
        pos: Transport,
        device: Transport | Callable[[], Transport],
        session: ScanSink,
        *,
        suffix: bytes | None,
        prefix: bytes = b"",
        pass_cards: bool = False,
        barcodes: BarcodeSettings | None = None,
        idle_timeout: float = 0.05,
        name: str = "scanner",
        backoff: Backoff | None = None,
        on_status: Callable[[PowerState, str], None] | None = None,
        unread_timeout: float = UNREAD_TIMEOUT,
    ) -> None:
        self.name = name
        self.unread_timeout = unread_timeout
        self._unread_since: float | None = None  # when the POS's pty was first seen unread
        self.pos = pos
        self.session = session
        self.suffix = suffix
        self.pass_cards = pass_cards
        self.barcodes = barcodes or BarcodeSettings()
        self.power = PowerState.UNKNOWN
        self._on_status_cb = on_status
        self._options = ScanOptions(prefix=prefix)
        # the same framing rules (and validation) as the scanner driver
        self._framer = Framer(suffix, prefix=prefix, idle_timeout=idle_timeout)
        self._raw = bytearray()  # bytes fed to the framer and not yet released to the POS
        self._counts: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pos_thread: threading.Thread | None = None
        factory: Callable[[], Transport]
        if isinstance(device, Transport):
            transport = device
            factory = lambda: transport  # noqa: E731  (the same port, reopened)
        else:
            factory = device
        self._loop = ReaderLoop(
            name,
            factory,
            on_data=self._on_data,
            on_tick=self._on_tick,
            on_status=self._on_status,
            on_error=self._on_error,
            backoff=backoff,
            poll=min(0.05, idle_timeout / 2),
        )

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._pos_thread is not None:
            return
        if not self.pos.is_open:
            self.pos.open()
        self._stop.clear()
        self._loop.start()
        self._pos_thread = threading.Thread(
            target=self._pos_to_device, name=f"relay-{self.name}-pos", daemon=True
        )
        self._pos_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._loop.stop(timeout)
        thread, self._pos_thread = self._pos_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.pos.close()

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff (udev just announced the scanner)."""
        self._loop.reconnect_now()

    @property
    def online(self) -> bool:
        return self.power is PowerState.ONLINE

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self._counts[what] += n

    # ------------------------------------------------------------------ scanner -> POS

    def _on_data(self, data: bytes, now: float) -> None:
        self._raw += data
        frames = self._framer.feed(data, now)
        if frames or len(self._raw) > len(self._framer.pending):
            self._release(frames)

    def _on_tick(self, now: float) -> None:
        self._drop_stale(now)
        frames = self._framer.poll(now)
        if frames or len(self._raw) > len(self._framer.pending):
            self._release(frames)

    def _release(self, frames: list[Frame]) -> None:
        """Write to the POS what the framer consumed, minus the cards we keep."""
        # The framer only ever drops bytes from the front of its buffer, so what it still
        # holds is the tail of `_raw` and everything before that belongs to `frames`.
        consumed = len(self._raw) - len(self._framer.pending)
        chunk = bytes(self._raw[:consumed])
        del self._raw[:consumed]
        out = bytearray()
        at = 0
        for frame in frames:
            if chunk.startswith(frame.data, at):
                start = at
            elif chunk.startswith(_LF + frame.data, at):  # a CRLF scanner's LF, dropped
                start = at + 1
            else:  # cannot happen with today's framer; fail open: the POS gets it all
                log.error("%s: scan not found in the bytes read; passed on as is", self.name)
                self._count("failures")
                break
            end = start + len(frame.data)
            if frame.terminated and self.suffix is not None and chunk.startswith(self.suffix, end):
                end += len(self.suffix)
            out += chunk[at:start]
            if self._passes(frame):
                out += chunk[start:end]
            at = end
        out += chunk[at:]
        if out:
            self._to_pos(bytes(out))

    def _passes(self, frame: Frame) -> bool:
        """Sort one scan: tell the session, and say whether the POS gets its bytes."""
        if not frame.terminated and self.suffix is not None:
            self._count("half_scans")
            log.info(
                "%s: incomplete scan (%d bytes, shaped %r) passed on",
                self.name,
                len(frame.data),
                shape(frame.data),
            )
            return True
        try:
            scan = make_scan(frame.data, self.name, self._options)
            found = classify((scan.symbology or "") + scan.text, self.barcodes)
        except UnusableInput:
            self._count("unrecognised")
            return True
        except Exception as exc:  # our bug must not cost the POS a scan
            self._count("failures")
            log.error(
                "%s: sorting a scan failed (%s: %s); passed on",
                self.name,
                type(exc).__name__,
                mask_text(str(exc)),
            )
            return True
        if found.kind == "loyalty_card":
            return self._card(str(found.extra.get("card") or found.text))
        if found.kind == "unknown":
            self._count("unrecognised")
            log.debug("%s: unrecognised scan (%d bytes) passed on", self.name, len(frame.data))
            return True
        try:
            self.session.barcode_scanned(found.text)
        except Exception as exc:
            self._count("failures")
            log.error("%s: the session refused a product scan: %s", self.name, mask_text(str(exc)))
        self._count("scans")
        return True

    def _card(self, number: str) -> bool:
        masked = mask_pan(number)
        try:
            self.session.card_presented(number, CARD_SOURCE)
        except Exception as exc:  # fail open: the POS gets the scan as if we were not here
            self._count("failures")
            log.error(
                "%s: card %s not taken (%s: %s); passed on to the POS",
                self.name,
                masked,
                type(exc).__name__,
                mask_text(str(exc).replace(number, masked)),  # not every card is Luhn-valid
            )
            return True
        self._count("cards")
        if self.pass_cards:
            self._count("cards_passed")
        log.info(
            "%s: loyalty card %s captured%s",
            self.name,
            masked,
            ", passed on to the POS" if self.pass_cards else "",
        )
        return self.pass_cards

    def _drop_stale(self, now: float) -> None:
        """Scans a POS has not read for `unread_timeout` seconds are dropped: it has its
        port closed (or has stopped), and when it opens it must not ring up old products."""
        if not isinstance(self.pos, PtyPort):
            return  # the TCP port drops what no POS is connected for already
        unread = self.pos.unread()
        if unread == 0:
            self._unread_since = None
        elif self._unread_since is None:
            self._unread_since = now
        elif now - self._unread_since >= self.unread_timeout:
            self.pos.discard_unread()
            self._unread_since = None
            self._count("stale_dropped", unread)
            log.warning(
                "%s: %d bytes of scans unread by the POS for %.0f s dropped: is the POS"
                " reading %s?",
                self.name,
                unread,
                self.unread_timeout,
                self.pos.link or self.pos.slave_path,
            )

    def _to_pos(self, data: bytes) -> None:
        try:
            self.pos.write(data)
        except TransportError as exc:
            self._count("pos_write_failures")
            log.warning("%s: %d bytes not delivered to the POS: %s", self.name, len(data), exc)

    # ------------------------------------------------------------------ status

    def _on_status(self, power: PowerState, reason: str) -> None:
        if power is not PowerState.ONLINE:
            self._framer.reset()
            if self._raw:  # the scanner left mid-scan: the half it sent is the POS's to judge
                self._count("half_scans")
                log.info("%s: %d bytes cut by the unplug passed on", self.name, len(self._raw))
                self._to_pos(bytes(self._raw))
                self._raw.clear()
        if power is not self.power:
            if power is PowerState.OFFLINE:
                self._count("offline")
            log.info("%s: scanner %s (%s)", self.name, power, mask_text(reason))
            self.power = power
            if self._on_status_cb is not None:
                try:
                    self._on_status_cb(power, reason)
                except Exception:
                    log.exception("%s: status listener failed", self.name)

    def _on_error(self, message: str) -> None:
        self._count("failures")
        log.error("%s: %s", self.name, mask_text(message))

    # ------------------------------------------------------------------ POS -> scanner

    def _pos_to_device(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.pos.read(4096, 0.05)
            except TransportError as exc:
                if not self._stop.is_set():
                    log.error("%s: the POS port failed: %s", self.name, exc)
                return
            if not data:
                continue
            device = self._loop.transport
            if device is None:
                self._count("to_device_dropped", len(data))
                continue
            try:
                device.write(data)
            except TransportError as exc:  # the reader notices the unplug and reopens
                self._count("to_device_dropped", len(data))
                log.info("%s: %d bytes for the scanner dropped: %s", self.name, len(data), exc)
                continue
            self._count("to_device", len(data))
