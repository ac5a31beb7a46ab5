"""The local POS API (FastAPI): what the POS software calls on 127.0.0.1.

FastAPI is the one heavy dependency of the service: it gives request validation from
the same pydantic models, and the OpenAPI document integrators and our schemathesis
run read.  In front of it sits our own door (bridge.api.front): the token check, and a
lane for the till's body-less cheque calls.  Every error is a problem+json body with a
machine `code` and the text for the cashier (bridge.api.problems).  Money goes out as
JSON numbers with exact digits (our encoder), never through a binary float.
"""

from __future__ import annotations

import asyncio
import base64
import http
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException

from bridge import __version__
from bridge.api.front import TOKEN_HEADER, FrontDoor
from bridge.api.models import (
    MONEY_CODES,
    BalanceOut,
    CardIn,
    ChequeIn,
    ChequeOut,
    LineIn,
    LinesIn,
    PaymentIn,
    PrintOut,
    Problem,
    ReceiptIn,
    ReceiptOut,
    RefundIn,
    RefundOut,
    StatusOut,
)
from bridge.api.problems import Json, problem, problem_for
from bridge.loyalty import errors
from bridge.loyalty.journal import JournalError
from bridge.loyalty.offline import LocalResponse
from bridge.loyalty.protocol import Identifier, Operation, dumps, mask_card
from bridge.metrics import CONTENT_TYPE
from bridge.service.cheques import ChequeError, Line, RegisterCheque
from bridge.service.events import CLOSED

if TYPE_CHECKING:
    from bridge.service.register import Register

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
    422: {"model": Problem}, 503: {"model": Problem},
}


def create_app(register: Register, token: str) -> FrontDoor:
    app = FastAPI(
        title="posbridge POS API",
        version=__version__,
        description="Local API of the register bridge. Send the token in the "
        f"`{TOKEN_HEADER}` header. Money is decimal with 2 places.",
        docs_url=None,
        redoc_url=None,
    )
    _document_security(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        errs = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")}
                for e in exc.errors()]
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs[:5])
        kinds = {e.get("type") for e in exc.errors()}
        code = kinds.pop() if len(kinds) == 1 and kinds <= MONEY_CODES else "invalid_request"
        return problem(422, str(code), where or "invalid request", errors=errs)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> Response:
        """FastAPI's and Starlette's own refusals (no route, wrong method, a body that is
        not JSON: nested too deeply, say) as problems too, never a bare {"detail": ...}."""
        try:
            phrase = http.HTTPStatus(exc.status_code).phrase
        except ValueError:
            phrase = "Error"
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        detail = str(exc.detail)
        if isinstance(exc.__cause__, RecursionError):
            code, detail = "invalid_json", "the JSON body is nested too deeply"
        answer = problem(exc.status_code, code, detail, title=phrase)
        answer.headers.update(exc.headers or {})
        return answer

    async def _problem(_: Request, exc: Exception) -> Response:
        return problem_for(exc)

    # JournalError and sqlite3.Error: a full or failing disk is a 503 problem, not a
    # re-raised 500 (Starlette re-raises what only the `Exception` handler catches)
    for failure in (ChequeError, errors.LoyaltyError, JournalError, sqlite3.Error,
                    Exception):
        app.add_exception_handler(failure, _problem)

    book = register.book
    sequencer = register.offline.client.exclusive()

    async def in_turn(step: Callable[[], T]) -> T:
        """Run a loyalty step on the register's sender thread: one hop, in arrival order.

        The step's requests to processing then run inline there (the thread already
        holds the register's turn), and no API thread blocks waiting for its turn.
        """
        return await sequencer.acall(step)

    def cheque_json(cheque: RegisterCheque, status: int = 200) -> Json:
        return Json(cheque.view(), status_code=status)

    @app.get("/v1/status", response_model=StatusOut, responses=_ERRORS)
    def status() -> Json:
        return Json(register.status())

    @app.get("/metrics", responses=_ERRORS, response_class=Response,
             include_in_schema=True)
    def metrics() -> Response:
        """Prometheus text: requests by operation and outcome, latency, journal, devices."""
        return Response(register.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/events", responses=_ERRORS,
             response_class=StreamingResponse)
    async def events(request: Request) -> StreamingResponse:
        """Server-Sent Events: scans (classified), swipes (masked), device status, connectivity."""
        sub = register.events.subscribe()

        async def stream() -> Any:
            try:
                yield b": posbridge events\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(sub.get(), timeout=15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if event is CLOSED:
                        return
                    yield (f"id: {event['id']}\nevent: {event['type']}\ndata: ".encode()
                           + dumps(event, floats=True) + b"\n\n")
            finally:
                sub.close()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.post("/v1/cheques", status_code=201, response_model=ChequeOut,
              responses={**_ERRORS, 429: {"model": Problem}})
    def open_cheque(body: ChequeIn) -> Json:
        """Open a cheque; past `cheques.max_open` open ones: 429 `too_many_open_cheques`."""
        cheque = book.open(body.number, body.card, [_line(x) for x in body.lines])
        register.publish_cheque("cheque_opened", cheque)
        return cheque_json(cheque, 201)

    @app.get("/v1/cheques/{cheque_id}", response_model=ChequeOut,
             responses=_ERRORS)
    def get_cheque(cheque_id: str) -> Json:
        return cheque_json(book.get(cheque_id))

    @app.post("/v1/cheques/{cheque_id}/lines", response_model=ChequeOut,
              responses=_ERRORS)
    def add_lines(cheque_id: str, body: LinesIn) -> Json:
        cheque = book.get(cheque_id)
        book.set_lines(cheque, [_line(x) for x in body.lines], replace=body.replace)
        return cheque_json(cheque)

    @app.put("/v1/cheques/{cheque_id}/card", response_model=ChequeOut,
             responses=_ERRORS)
    def attach_card(cheque_id: str, body: CardIn) -> Json:
        """Another card starts the cheque's loyalty afresh; refused (409 `redemption_held`)
        while bonuses of the previous card are held: release them first (DELETE payments)."""
        cheque = book.attach_card(body.card, cheque_id)
        assert cheque is not None
        return cheque_json(cheque)

    async def calculate(cheque_id: str) -> Json:
        """Discount and bonuses available for the cheque as it stands (nothing is booked)."""
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.calculate(cheque)))

    async def confirm(cheque_id: str) -> Json:
        """Book the purchase: accrual and redemption become final (journaled when offline)."""
        found = book.get(cheque_id)
        cheque = await in_turn(lambda: book.confirm(found))
        register.publish_cheque("cheque_confirmed", cheque)
        return cheque_json(cheque)

    async def cancel(cheque_id: str) -> Json:
        """Drop the cheque; a redemption already held at processing is given back."""
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.cancel(cheque)))

    # The till's body-less calls: FastAPI routes (so the OpenAPI document has them), served
    # by the front door's lane without FastAPI's stack (see bridge.api.front).
    lane = {"calculate": calculate, "confirm": confirm, "cancel": cancel}
    for action, handler in lane.items():
        app.post(f"/v1/cheques/{{cheque_id}}/{action}", response_model=ChequeOut,
                 responses=_ERRORS, name=action)(handler)

    @app.post("/v1/cheques/{cheque_id}/payment", response_model=ChequeOut,
              responses=_ERRORS)
    async def payment(cheque_id: str, body: PaymentIn) -> Json:
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.pay(cheque, body.amount)))

    @app.delete("/v1/cheques/{cheque_id}/payments", response_model=ChequeOut,
                responses=_ERRORS)
    async def release_payments(cheque_id: str) -> Json:
        """Give back the bonuses held for the cheque (journaled); it stays open, same card."""
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.release_redemption(cheque)))

    @app.post("/v1/cheques/{cheque_id}/refund", response_model=RefundOut,
              responses=_ERRORS)
    async def refund(cheque_id: str, body: RefundIn | None = None) -> Json:
        """Refund lines (all that is left when no lines are given); asking for more than is
        left of a line or of the cheque is refused at once (409 `over_refund`)."""
        positions: dict[int, Decimal] | None = None
        if body is not None and body.lines is not None:
            positions = {}
            for ln in body.lines:
                positions[ln.position] = positions.get(ln.position, Decimal(0)) + ln.quantity
        cheque = book.get(cheque_id)
        return Json(await in_turn(lambda: book.refund(cheque, positions)))

    @app.post("/v1/shift/close", responses=_ERRORS)
    def close_shift() -> Json:
        """Cancel every open cheque (held bonuses given back, through the journal)."""
        closed = book.expire(everything=True)  # each one announced as `cheque_expired`
        return Json({"cancelled": len(closed),
                     "queued": sum(1 for c in closed if c.queued),
                     "cheques": [c.number for c in closed]})

    @app.get("/v1/cards/{number}/balance", response_model=BalanceOut,
             responses=_ERRORS)
    async def balance(number: str) -> Json:
        if not (4 <= len(number) <= 64 and number.isascii() and number.isalnum()):
            raise ChequeError("bad_card", "a card number is 4-64 letters or digits", 422)
        oc = register.offline
        request = oc.prepare(Operation.BALANCE, identifier=Identifier(value=number))
        response = await in_turn(lambda: oc.send(request))
        return Json({"card": mask_card(number), "balance": response.balance,
                     "offline": isinstance(response, LocalResponse),
                     "cashierMessage": response.cashier_message})

    @app.post("/v1/receipts/loyalty", response_model=ReceiptOut,
              responses=_ERRORS)
    def receipt(body: ReceiptIn) -> Json:
        cheque = book.get(body.cheque_id)
        lines, escpos = register.loyalty_receipt(cheque)
        return Json({"chequeId": cheque.id, "columns": register.config.receipt.columns,
                     "lines": lines, "escposBase64": base64.b64encode(escpos).decode()})

    @app.post("/v1/receipts/print", response_model=PrintOut, status_code=202,
              responses=_ERRORS)
    def print_receipt(body: ReceiptIn) -> Json:
        job_id, state = register.print_loyalty_receipt(book.get(body.cheque_id))
        return Json({"jobId": job_id, "state": state}, status_code=202)

    return FrontDoor(app, token, lane, max_body_bytes=register.config.api.max_body_bytes,
                     body_timeout=register.config.api.header_timeout)


def _document_security(app: FastAPI) -> None:
    """Say in the OpenAPI document that every operation needs the token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
            schema["security"] = [{"token": []}, {"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _line(body: LineIn) -> Line:
    return Line(goods_id=body.goods_id, name=body.name, price=body.price,
                quantity=body.quantity, amount=body.line_amount(), barcode=body.barcode)
