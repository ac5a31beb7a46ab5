"""A processing whose answers drift from the contract: the real sandbox behind a rewriter.

A small HTTP server on loopback forwards each request, byte for byte and with its
authorization, to a real sandbox, then hands the sandbox's answer for the chosen
operation to `rewrite` and sends the client what it returns (a dict is encoded as JSON,
bytes go out as they are).  So the step really happened at processing, with real ids and
amounts, and only the answer's shape differs: what a newer or independent processing
version does.  `originals` keeps the sandbox's own answers to compare what was read.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import httpx

from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import (
    Cheque,
    ChequeLine,
    Identifier,
    Operation,
    ProcessingResponse,
    dumps,
    loads,
    match_path,
)
from bridge.loyalty.purchase import Purchase

Rewrite = Callable[[dict[str, Any]], "dict[str, Any] | bytes"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: DriftingProcessing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        fake = cast(_Server, self.server).fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content = fake.answer(self.path, self.headers.get("Authorization", ""), body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST


class DriftingProcessing:
    def __init__(self, sandbox_url: str) -> None:
        self._upstream = httpx.Client(
            base_url=sandbox_url.rsplit("/publicapi", 1)[0], timeout=10, trust_env=False
        )
        self.only: Operation | None = None  # the operation whose answers are rewritten (None: all)
        self.rewrite: Rewrite | None = None
        self.originals: list[dict[str, Any]] = []  # the sandbox's answers that were rewritten
        self.requests: list[tuple[str, bytes]] = []  # (path, body) of every request, in order
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/publicapi"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def drift(self, op: Operation | None, rewrite: Rewrite) -> None:
        """From now on, answers to `op` (every operation's: None) go through `rewrite`."""
        with self._lock:
            self.only, self.rewrite = op, rewrite

    def stop_drifting(self) -> None:
        with self._lock:
            self.only, self.rewrite = None, None

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait (on arrivals, no polling) until `predicate` holds for the requests seen."""
        with self._arrived:
            return self._arrived.wait_for(predicate, timeout)

    def answer(self, path: str, authorization: str, body: bytes) -> tuple[int, bytes]:
        with self._arrived:
            self.requests.append((path, body))
            self._arrived.notify_all()
        upstream = self._upstream.post(
            path,
            content=body,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
        )
        matched = match_path(path.removeprefix("/publicapi"))
        with self._lock:
            hit = matched is not None and (self.only is None or matched[0] is self.only)
            rewrite = self.rewrite if hit else None
        if rewrite is None or upstream.status_code != 200:
            return upstream.status_code, upstream.content
        original = loads(upstream.content)
        self.originals.append(original)
        out = rewrite(copy.deepcopy(original))
        return 200, out if isinstance(out, bytes) else dumps(out)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


@contextmanager
def drifting_processing(sandbox_url: str) -> Iterator[DriftingProcessing]:
    fake = DriftingProcessing(sandbox_url)
    try:
        yield fake
    finally:
        fake.close()


# ---------------------------------------------------------------------- the nine steps

CARD = "2775000000012"  # active, 500.00 bonuses in the sandbox's seed


def cheque() -> Cheque:
    return Cheque(
        number="D1",
        date=datetime(2026, 11, 29, 15, 0),
        lines=[
            ChequeLine(
                position=1,
                goods_id="1001",
                name="Milk",
                price=Decimal("89.90"),
                quantity=Decimal(2),
                amount=Decimal("179.80"),
            ),
            ChequeLine(
                position=2,
                goods_id="5001",
                name="Dish soap",
                price=Decimal("150.00"),
                quantity=Decimal(1),
                amount=Decimal("150.00"),
            ),
        ],
    )


@dataclass
class Step:
    """Where `perform` got to: the purchase (if any) and the request of the drifting step."""

    purchase: Purchase | None = None
    request_op_id: str | None = None


def perform(
    oc: OfflineClient,
    fake: DriftingProcessing,
    op: Operation,
    rewrite: Rewrite,
    step: Step | None = None,
) -> ProcessingResponse:
    """Reach `op` the way the register does (earlier steps answered as the contract says),
    then send `op` with its answer rewritten; returns what the register made of it."""
    try:
        return _perform(oc, fake, op, rewrite, step if step is not None else Step())
    finally:
        fake.stop_drifting()


def _perform(
    oc: OfflineClient, fake: DriftingProcessing, op: Operation, rewrite: Rewrite, step: Step
) -> ProcessingResponse:
    ident = Identifier(value=CARD)

    def arm() -> None:
        fake.drift(op, rewrite)

    if op is Operation.BALANCE:
        request = oc.prepare(Operation.BALANCE, identifier=ident)
        step.request_op_id = request.operation_id
        arm()
        return oc.send(request)
    p = step.purchase = Purchase(oc, cheque(), ident)
    if op is Operation.CALCULATE:
        arm()
        return p.calculate()
    p.calculate()
    if op is Operation.AVAILABLE:
        arm()
        return p.available()
    if op is Operation.PAYMENT:
        arm()
        return p.pay(Decimal("20"))
    if op is Operation.CANCEL_OPERATION:
        p.pay(Decimal("20"))
        payment = p.last_request_id
        arm()
        return p.cancel_payment(payment)
    if op is Operation.DISCOUNT:
        arm()
        return p.discount()
    p.discount()
    if op is Operation.CANCEL:
        arm()
        return p.cancel()
    if op is Operation.CONFIRM:
        arm()
        return p.confirm()
    p.confirm()
    assert op is Operation.REFUND
    refund = oc.client.prepare_refund(p.purchase_id, cheque(), ident)
    step.request_op_id = refund.operation_id
    arm()
    return oc.send(refund)
