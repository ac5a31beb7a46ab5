"""Every error of the POS API as one problem+json body: a machine `code`, the detail for
the integrator's log and the text to show the cashier.

One mapping for both ways a request reaches a handler (FastAPI's routes and the front
door's till lane), so the POS sees the same body for the same failure either way.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from starlette.responses import Response

from bridge.loyalty import errors
from bridge.loyalty.journal import CASHIER_UNAVAILABLE, JournalUnavailable, storage_failure
from bridge.loyalty.offline import RedemptionOffline
from bridge.loyalty.protocol import dumps
from bridge.service.cheque import ChequeError
from drivers.masking import mask_data, mask_text

log = logging.getLogger("posbridge.api")

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    409: "Conflict",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    502: "Processing error",
    503: "Processing unreachable",
}


class Json(Response):
    """Our encoder: money goes out as JSON numbers with exact digits, never via a float."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content, floats=True)


class ProblemJson(Json):
    media_type = "application/problem+json"


def problem(
    status: int, code: str, detail: str, cashier: str | None = None, **extra: Any
) -> ProblemJson:
    # detail and cashier text may quote processing or a device: card numbers masked here
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": mask_text(detail),
        "cashierMessage": None if cashier is None else mask_text(cashier),
        **mask_data(extra),
    }
    return ProblemJson(body, status_code=status)


def problem_for(exc: Exception) -> ProblemJson:
    """The answer for an exception a handler let out; unknown ones are logged as bugs."""
    if isinstance(exc, ChequeError):
        return problem(exc.status, exc.code, str(exc), str(exc))
    if isinstance(exc, JournalUnavailable):
        # the journal's disk is full, read-only or failing: nothing was left half-done
        return problem(
            503,
            "journal_unavailable",
            str(exc),
            exc.cashier_text,
            title="Loyalty journal unavailable",
            undone=exc.undone,
        )
    if isinstance(exc, sqlite3.Error) and storage_failure(exc):
        # the register's other files (open cheques) sit on the journal's disk
        log.error("register storage unavailable: %s", exc)
        return problem(
            503,
            "journal_unavailable",
            f"register storage unavailable: {storage_failure(exc)}",
            CASHIER_UNAVAILABLE,
            title="Loyalty journal unavailable",
            undone=None,
        )
    if isinstance(exc, RedemptionOffline):
        return problem(409, "redemption_offline", str(exc), exc.cashier_text)
    if isinstance(exc, errors.BusinessError):
        return problem(422, exc.code, exc.error_message or exc.code, exc.cashier_text)
    if isinstance(exc, errors.AuthenticationFailed):
        return problem(502, "processing_credentials", str(exc), exc.cashier_text)
    if isinstance(exc, errors.LoyaltyError):
        if exc.offline:
            return problem(503, "processing_unreachable", str(exc), exc.cashier_text)
        return problem(502, "processing_error", str(exc), exc.cashier_text)
    log.error("POS API request failed", exc_info=exc)
    return problem(
        500,
        "internal_error",
        f"internal error: {type(exc).__name__}",
        "Loyalty service error; the cheque can be completed without loyalty",
    )
