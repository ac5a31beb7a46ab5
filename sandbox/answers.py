"""What a step answers: HTTP status, processing code and body, or the reason it cannot.

Shared by the HTTP front and every concern behind it, so a refusal or a 400 has one shape
wherever it is raised, and the status counters see the same code the register sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from bridge.loyalty.protocol import ErrorCode, dumps


class Refusal(Exception):
    """A business outcome other than Ok: HTTP 200 with this code.

    Raised, not returned, so that the step's transaction rolls back whatever was written.
    """

    def __init__(self, code: ErrorCode, message: str, cashier: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cashier = cashier


class BadRequest(Exception):
    """The request cannot be understood: HTTP 400, and the transaction rolls back."""


@dataclass(frozen=True)
class Outcome:
    """An answer ready to send; `duplicate` marks a replayed step served from storage."""

    status: int
    code: str
    body: bytes
    duplicate: bool = False


def describe(exc: ValidationError, root: str = "") -> str:
    """A pydantic error as one line naming each bad field, e.g. `cheque.lines.0.amount: ...`."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join([root, *(str(p) for p in err["loc"])]).strip(".") or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def error_body(message: str) -> bytes:
    return dumps({"code": ErrorCode.SYSTEM_ERROR.value, "errorMessage": message})


def bad_request(message: str) -> Outcome:
    """A 400 the way processing sends it: SystemError and a message naming what was wrong."""
    return Outcome(400, ErrorCode.SYSTEM_ERROR.value, error_body(message))
