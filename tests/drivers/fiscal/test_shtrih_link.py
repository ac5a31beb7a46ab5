"""The link layer against a raw peer on a real pty (and a TCP socket), played byte by byte.

The test is the device: it reads exactly what the driver must send and answers with what
a Shtrih-M would, including the misbehaviour (NAK, bad LRC, silence, stray 0xFF).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from drivers.device import PowerState
from drivers.fiscal.base import (
    DocumentState,
    FiscalLinkError,
    FiscalPayment,
    PaymentKind,
    TaxSystem,
)
from drivers.fiscal.shtrih import ShtrihFiscalPrinter
from drivers.fiscal.shtrih import commands as cmd
from drivers.fiscal.shtrih.frames import ACK, ENQ, NAK, encode_frame, request_body
from drivers.fiscal.shtrih.link import LinkFailure, ShtrihLink
from drivers.transport.serial import SerialTransport
from drivers.transport.tcp import TcpTransport

try:
    from tests.drivers.pty_helpers import Pty
except ImportError:
    from pty_helpers import Pty  # type: ignore[no-redef,import-not-found]

REQUEST = bytes.fromhex("10 1e 00 00 00")
ANSWER = bytes.fromhex("10 00 1e 80 00 02 00") + bytes(9)
STALE = bytes.fromhex("17 00 1e")


class Call:
    """link.exchange running in a thread while the test plays the device."""

    def __init__(self, link: ShtrihLink, body: bytes = REQUEST, **kw: Any) -> None:
        self.result: bytes | None = None
        self.error: BaseException | None = None
        kw.setdefault("answer_timeout", 2.0)
        self._thread = threading.Thread(target=self._run, args=(link, body, kw), daemon=True)
        self._thread.start()

    def _run(self, link: ShtrihLink, body: bytes, kw: dict[str, Any]) -> None:
        try:
            self.result = link.exchange(body, **kw)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def wait(self) -> bytes:
        self._thread.join(10)
        assert not self._thread.is_alive(), "exchange did not finish"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Peer:
    """The device side: what it receives is asserted, what it sends is raw bytes."""

    def __init__(self, recv: Any, send: Any) -> None:
        self.recv, self.send = recv, send

    def expect(self, data: bytes) -> None:
        assert self.recv(len(data)) == data

    def expect_enq(self) -> None:
        self.expect(bytes([ENQ]))

    def take_frame(self, body: bytes = REQUEST) -> None:
        self.expect(encode_frame(body))

    def answer(self, body: bytes = ANSWER) -> None:
        self.send(encode_frame(body))
        self.expect(bytes([ACK]))


@pytest.fixture
def pty_link() -> Iterator[tuple[ShtrihLink, Peer]]:
    with Pty() as port:
        transport = SerialTransport(port.path)
        transport.open()
        try:
            yield ShtrihLink(transport, timeout=1.0, retries=2), Peer(port.recv, port.send)
        finally:
            transport.close()


def test_idle_device_frame_ack_answer(pty_link: tuple[ShtrihLink, Peer]) -> None:
    link, dev = pty_link
    call = Call(link)
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))
    dev.answer()
    assert call.wait() == ANSWER


def test_pending_answer_is_read_first_and_dropped_when_it_is_not_ours(
    pty_link: tuple[ShtrihLink, Peer],
) -> None:
    link, dev = pty_link
    call = Call(link)
    dev.expect_enq()
    dev.send(bytes([ACK]))
    dev.answer(STALE)  # an answer left from before: read, ACKed, dropped
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))
    dev.answer()
    assert call.wait() == ANSWER


def test_nak_on_the_frame_sends_it_again(pty_link: tuple[ShtrihLink, Peer]) -> None:
    link, dev = pty_link
    call = Call(link)
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([NAK]))  # the device saw a bad LRC
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))
    dev.answer()
    assert call.wait() == ANSWER


def test_bad_lrc_in_the_answer_gets_nak_and_the_replay_is_taken(
    pty_link: tuple[ShtrihLink, Peer],
) -> None:
    link, dev = pty_link
    call = Call(link, body=bytes.fromhex("ff 46 1e 00 00 00 01"))
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame(bytes.fromhex("ff 46 1e 00 00 00 01"))
    dev.send(bytes([ACK]))
    good = encode_frame(b"\xff\x46\x00")
    dev.send(good[:-1] + bytes([good[-1] ^ 0x5A]))
    dev.expect(bytes([NAK]))
    dev.expect_enq()
    dev.send(bytes([ACK]))  # the answer is still pending: the device replays it
    dev.answer(b"\xff\x46\x00")
    assert call.wait() == b"\xff\x46\x00"


def test_lost_answer_to_an_acknowledged_command_is_never_resent(
    pty_link: tuple[ShtrihLink, Peer],
) -> None:
    link, dev = pty_link
    link.timeout = 0.3
    call = Call(link, answer_timeout=0.3)
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))  # executed, but the answer never comes
    dev.expect_enq()
    dev.send(bytes([NAK]))  # and the device holds no answer any more
    with pytest.raises(LinkFailure, match="lost its answer") as caught:
        call.wait()
    assert caught.value.delivered
    assert dev.recv(1, timeout=0.5) == b""  # the frame was not sent a second time


def test_lost_answer_of_a_repeatable_command_is_asked_again(
    pty_link: tuple[ShtrihLink, Peer],
) -> None:
    link, dev = pty_link
    link.timeout = 0.3
    call = Call(link, answer_timeout=0.3, repeatable=True)
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame()
    dev.send(bytes([ACK]))
    dev.answer()
    assert call.wait() == ANSWER


def test_silence_gives_up_after_the_retries(pty_link: tuple[ShtrihLink, Peer]) -> None:
    link, dev = pty_link
    link.timeout = 0.2
    call = Call(link)
    for _ in range(3):  # the first ENQ and two retries
        dev.expect_enq()
    with pytest.raises(LinkFailure, match="no answer to ENQ after 3 tries") as caught:
        call.wait()
    assert not caught.value.delivered


def test_nak_storm_gives_up(pty_link: tuple[ShtrihLink, Peer]) -> None:
    link, dev = pty_link
    call = Call(link)
    for _ in range(3):
        dev.expect_enq()
        dev.send(bytes([NAK]))
        dev.take_frame()
        dev.send(bytes([NAK]))
    with pytest.raises(LinkFailure, match=r"rejected the frame 3 times \(NAK\)"):
        call.wait()


def test_closed_port_is_a_link_failure(pty_link: tuple[ShtrihLink, Peer]) -> None:
    link, _ = pty_link
    link.transport.close()
    with pytest.raises(LinkFailure, match="registrar port failed"):
        link.exchange(REQUEST, answer_timeout=0.1)


def test_stray_ff_after_ack_over_tcp_is_tolerated() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    transport = TcpTransport("127.0.0.1", port)
    transport.open()
    conn, _ = server.accept()
    conn.settimeout(5)

    def recv(size: int, timeout: float = 5.0) -> bytes:
        conn.settimeout(timeout)
        out = b""
        try:
            while len(out) < size:
                chunk = conn.recv(size - len(out))
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        return out

    dev = Peer(recv, conn.sendall)
    link = ShtrihLink(transport, timeout=1.0, retries=2)
    try:
        for body in (ANSWER, STALE):
            call = Call(link, body=REQUEST)
            dev.expect_enq()
            dev.send(bytes([0xFF, NAK]))  # a stray byte may even precede a control byte
            dev.take_frame()
            dev.send(bytes([ACK]))
            dev.answer(body)
            dev.send(b"\xff")  # the quirk: 0xFF after the host's ACK
            assert call.wait() == body
    finally:
        transport.close()
        conn.close()
        server.close()


def test_close_whose_answer_is_lost_is_never_left_open_silently() -> None:
    """The close went out, the device went quiet: the error says so; later the mode decides."""
    with Pty() as port:
        printer = ShtrihFiscalPrinter(
            "kkt", SerialTransport(port.path), timeout=0.2, retries=1, answer_timeout=0.2
        )
        printer.open()
        dev = Peer(port.recv, port.send)
        printer._document = DocumentState.OPEN  # a receipt with its items, as after begin+items
        cash = [FiscalPayment(PaymentKind.CASH, Decimal("10"))]
        failure: list[BaseException] = []

        def close() -> None:
            try:
                printer.end_fiscal_receipt(cash, TaxSystem.OSN)
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=close)
        worker.start()
        dev.expect_enq()
        dev.send(bytes([NAK]))
        dev.take_frame(request_body(0xFF45, 30, cmd.close_v2(cash, TaxSystem.OSN).data))
        dev.send(bytes([ACK]))  # taken, then the device goes quiet
        for _ in range(2 + 2):  # the close's ENQs, then the status query's
            dev.expect_enq()
        worker.join(10)
        assert not worker.is_alive()
        (error,) = failure
        assert isinstance(error, FiscalLinkError)
        assert error.state is DocumentState.OPEN
        assert "did not answer a status query" in error.message

        # the device is back and has no receipt open: the close went through
        worker = threading.Thread(target=printer.cancel_fiscal_receipt)
        worker.start()
        dev.expect_enq()
        dev.send(bytes([NAK]))
        dev.take_frame(request_body(0x10, 30))
        dev.send(bytes([ACK]))
        dev.answer(bytes([0x10, 0, 30, 0x80, 0, 2, 0]) + bytes(9))  # mode 2: shift open, idle
        worker.join(10)
        assert printer.document_state is DocumentState.CLOSED
        printer.close()


def test_an_unplugged_port_is_a_link_error_with_the_state() -> None:
    with Pty() as port:
        printer = ShtrihFiscalPrinter("kkt", SerialTransport(port.path), timeout=0.2, retries=1)
        printer.open()
        port.unplug()
        for _ in range(2):  # the failing call, then the next one trying to reopen
            with pytest.raises(FiscalLinkError, match="registrar") as caught:
                printer.direct_io(cmd.short_status())
            assert caught.value.state is DocumentState.NOT_OPENED
            assert caught.value.code is None
        assert printer.power is PowerState.OFFLINE  # a status event told the listeners
        printer.close()
        with pytest.raises(FiscalLinkError, match=r"not open \(call open\(\) first\)"):
            printer.status()


def test_a_frame_whose_ack_was_lost_is_not_executed_twice(
    pty_link: tuple[ShtrihLink, Peer],
) -> None:
    link, dev = pty_link
    link.timeout = 0.3
    body = bytes.fromhex("ff 46 1e 00 00 00 01")
    call = Call(link, body=body)
    dev.expect_enq()
    dev.send(bytes([NAK]))
    dev.take_frame(body)  # executed; its ACK (and the answer) lost on the line
    dev.expect_enq()
    dev.send(bytes([ACK]))  # the answer is pending: it is this command's
    dev.answer(b"\xff\x46\x00")
    assert call.wait() == b"\xff\x46\x00"
    assert dev.recv(1, timeout=0.5) == b""  # and the frame was not sent again
