"""The local POS API (FastAPI): what the POS software calls on 127.0.0.1.

FastAPI is the one heavy dependency of the service: it gives request validation from
the same pydantic models, and the OpenAPI document integrators and our schemathesis
run read.  Every error is a problem+json body with a machine `code` and the text for
the cashier.  Money goes out as JSON numbers with exact digits (our encoder), never
through a binary float.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse

from bridge import __version__
from bridge.api.models import (
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
from bridge.loyalty import errors
from bridge.loyalty.offline import LocalResponse, RedemptionOffline
from bridge.loyalty.protocol import Identifier, Operation, dumps, mask_card
from bridge.metrics import CONTENT_TYPE
from bridge.service.cheques import ChequeError, Line, RegisterCheque
from bridge.service.events import CLOSED

if TYPE_CHECKING:
    from bridge.service.register import Register

log = logging.getLogger("posbridge.api")
T = TypeVar("T")
TOKEN_HEADER = "X-Posbridge-Token"  # noqa: S105 - a header name, not a secret
CENT = Decimal("0.01")


class Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content, floats=True)


class ProblemJson(Json):
    media_type = "application/problem+json"


def problem(status: int, code: str, detail: str, cashier: str | None = None,
            **extra: Any) -> ProblemJson:
    titles = {400: "Bad request", 401: "Unauthorized", 404: "Not found", 409: "Conflict",
              422: "Unprocessable request", 502: "Processing error",
              503: "Processing unreachable"}
    body = {"type": "about:blank", "title": titles.get(status, "Error"), "status": status,
            "code": code, "detail": detail, "cashierMessage": cashier, **extra}
    return ProblemJson(body, status_code=status)


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
    422: {"model": Problem}, 503: {"model": Problem},
}


def create_app(register: Register, token: str) -> FastAPI:
    app = FastAPI(
        title="posbridge POS API",
        version=__version__,
        description="Local API of the register bridge. Send the token in the "
        f"`{TOKEN_HEADER}` header. Money is decimal with 2 places.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(TokenGuard, token=token)
    _document_security(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        errs = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")}
                for e in exc.errors()]
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs[:5])
        return problem(422, "invalid_request", where or "invalid request", errors=errs)

    @app.exception_handler(ChequeError)
    async def _cheque(_: Request, exc: ChequeError) -> Response:
        return problem(exc.status, exc.code, str(exc), str(exc))

    @app.exception_handler(errors.LoyaltyError)
    async def _loyalty(_: Request, exc: errors.LoyaltyError) -> Response:
        if isinstance(exc, RedemptionOffline):
            return problem(409, "redemption_offline", str(exc), exc.cashier_text)
        if isinstance(exc, errors.BusinessError):
            return problem(422, exc.code, exc.error_message or exc.code, exc.cashier_text)
        if isinstance(exc, errors.AuthenticationFailed):
            return problem(502, "processing_credentials", str(exc), exc.cashier_text)
        if exc.offline:
            return problem(503, "processing_unreachable", str(exc), exc.cashier_text)
        return problem(502, "processing_error", str(exc), exc.cashier_text)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> Response:
        log.exception("POS API request failed")
        return problem(500, "internal_error", f"internal error: {type(exc).__name__}",
                       "Loyalty service error; the cheque can be completed without loyalty")

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
              responses=_ERRORS)
    def open_cheque(body: ChequeIn) -> Json:
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
        cheque = book.attach_card(body.card, cheque_id)
        assert cheque is not None
        return cheque_json(cheque)

    @app.post("/v1/cheques/{cheque_id}/calculate", response_model=ChequeOut,
              responses=_ERRORS)
    async def calculate(cheque_id: str) -> Json:
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.calculate(cheque)))

    @app.post("/v1/cheques/{cheque_id}/payment", response_model=ChequeOut,
              responses=_ERRORS)
    async def payment(cheque_id: str, body: PaymentIn) -> Json:
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.pay(cheque, body.amount)))

    @app.post("/v1/cheques/{cheque_id}/confirm", response_model=ChequeOut,
              responses=_ERRORS)
    async def confirm(cheque_id: str) -> Json:
        found = book.get(cheque_id)
        cheque = await in_turn(lambda: book.confirm(found))
        register.publish_cheque("cheque_confirmed", cheque)
        return cheque_json(cheque)

    @app.post("/v1/cheques/{cheque_id}/cancel", response_model=ChequeOut,
              responses=_ERRORS)
    async def cancel(cheque_id: str) -> Json:
        cheque = book.get(cheque_id)
        return cheque_json(await in_turn(lambda: book.cancel(cheque)))

    @app.post("/v1/cheques/{cheque_id}/refund", response_model=RefundOut,
              responses=_ERRORS)
    async def refund(cheque_id: str, body: RefundIn | None = None) -> Json:
        positions = None
        if body is not None and body.lines is not None:
            positions = {ln.position: ln.quantity for ln in body.lines}
        cheque = book.get(cheque_id)
        return Json(await in_turn(lambda: book.refund(cheque, positions)))

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

    return app


class TokenGuard:
    """Every request but the OpenAPI document needs the token; checked before routing.

    A plain ASGI layer rather than a FastAPI dependency: it runs on every call of the
    till, and a dependency costs a good part of a millisecond here.  The token comes in
    X-Posbridge-Token, or as a Bearer token (what Prometheus scrapers send).
    """

    OPEN = frozenset({"/openapi.json"})

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in self.OPEN:
            given = None
            for name, value in scope["headers"]:
                if name == b"x-posbridge-token":
                    given = value
                elif name == b"authorization" and value[:7].lower() == b"bearer " and given is None:
                    given = value[7:]
            if given is None or not secrets.compare_digest(given, self._token):
                deny = problem(401, "unauthorized", f"missing or wrong {TOKEN_HEADER} header")
                await deny(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    amount = body.amount if body.amount is not None else (body.price * body.quantity).quantize(CENT)
    return Line(goods_id=body.goods_id, name=body.name, price=body.price,
                quantity=body.quantity, amount=amount, barcode=body.barcode)
