"""The local POS API (FastAPI): what the POS software calls on 127.0.0.1.

FastAPI is the one heavy dependency of the service: it gives request validation from
the same pydantic models, and the OpenAPI document integrators and our schemathesis
run read.  In front of it sits our own door (bridge.api.front): the token check, and a
lane for the till's body-less cheque calls.  Every error is a problem+json body with a
machine `code` and the text for the cashier (bridge.api.problems).  Money goes out as
JSON numbers with exact digits (our encoder), never through a binary float.

The routes live one module per resource in bridge.api.routes; this module assembles
them into the app the service serves.
"""

from __future__ import annotations

import functools
import http
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from bridge import __version__
from bridge.api.front import TOKEN_HEADER, ChequeAction, FrontDoor
from bridge.api.models import MONEY_CODES
from bridge.api.problems import problem, problem_for
from bridge.api.routes import cards, cheques, events, fiscal, receipts, status
from bridge.loyalty import errors
from bridge.loyalty.journal import JournalError
from bridge.service.cheque import ChequeError
from bridge.service.register import Register

# in this order: the OpenAPI document lists the paths as they are included
ROUTERS = (
    status.router,
    events.router,
    cheques.router,
    fiscal.router,
    cards.router,
    receipts.router,
)


def create_app(register: Register, token: str) -> FrontDoor:
    app = FastAPI(
        title="posbridge POS API",
        version=__version__,
        description="Local API of the register bridge. Send the token in the "
        f"`{TOKEN_HEADER}` header. Money is decimal with 2 places.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.register = register  # what bridge.api.routes.deps.register_of hands the routes
    _document_security(app)
    add_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # the lane calls the routes' own handlers, the register bound here once
    lane: dict[str, ChequeAction] = {
        action: functools.partial(handler, register) for action, handler in cheques.LANE.items()
    }
    return FrontDoor(
        app,
        token,
        lane,
        max_body_bytes=register.config.api.max_body_bytes,
        body_timeout=register.config.api.header_timeout,
    )


def add_problem_handlers(app: FastAPI) -> None:
    """Every failure a route lets out, and FastAPI's own refusals, as problem+json."""
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(HTTPException)(_http_error)
    # JournalError and sqlite3.Error: a full or failing disk is a 503 problem, not a
    # re-raised 500 (Starlette re-raises what only the `Exception` handler catches)
    for failure in (ChequeError, errors.LoyaltyError, JournalError, sqlite3.Error, Exception):
        app.add_exception_handler(failure, _problem)


async def _invalid(_: Request, exc: RequestValidationError) -> Response:
    errs = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs[:5])
    kinds = {e.get("type") for e in exc.errors()}
    code = kinds.pop() if len(kinds) == 1 and kinds <= MONEY_CODES else "invalid_request"
    return problem(422, str(code), where or "invalid request", errors=errs)


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
