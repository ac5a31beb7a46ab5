"""The POS API's front door: the token check for every request, and the till lane.

The till lane takes the body-less cheque actions a POS calls on every sale (calculate,
confirm, cancel) straight to the handler FastAPI's route for the same path calls.  On a
register-class CPU FastAPI's stack (error and body-limit middleware, router, parameter
solving, exception wrappers, both ways) costs about 0.5 ms a call, a sixth of a whole
processing round trip; the till waits for every one of them.  Everything else, request
bodies and validation included, stays with FastAPI, and the OpenAPI document describes
the lane's routes as before: they are the same routes.

The door also holds what every request must respect, whatever route it is for (see
bridge.api.limits): a loopback Host name, then the token, then a bounded body.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.api.gone import unless_gone
from bridge.api.limits import (
    DEFAULT_MAX_BODY,
    BodyTooLarge,
    declared_length,
    has_body,
    host_is_loopback,
    read_body,
    replaying,
)
from bridge.api.problems import problem, problem_for

TOKEN_HEADER = "X-Posbridge-Token"  # noqa: S105 - a header name, not a secret
WATCH_AFTER = 0.02  # a till call still waiting for its turn after this watches for a hang-up
ChequeAction = Callable[[str], Awaitable[Response]]


class FrontDoor:
    """An ASGI app in front of the FastAPI one (which stays reachable as `api`).

    The token comes in X-Posbridge-Token, or as a Bearer token (what Prometheus scrapers
    send); only the OpenAPI document is open.
    """

    OPEN = frozenset({"/openapi.json"})
    CHEQUES = "/v1/cheques/"
    WAITING = ("/v1/cheques/", "/v1/cards/")

    def __init__(
        self,
        api: ASGIApp,
        token: str,
        lane: Mapping[str, ChequeAction],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        body_timeout: float = 5.0,
    ) -> None:
        self.api = api
        self._token = token.encode()
        self._lane = dict(lane)
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        given = None
        for name, value in headers:
            if name == b"x-posbridge-token":
                given = value
            elif name == b"authorization" and value[:7].lower() == b"bearer " and given is None:
                given = value[7:]
        return given is not None and secrets.compare_digest(given, self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        path: str = scope["path"]
        if not host_is_loopback(scope["headers"]):
            deny = problem(
                421,
                "bad_host",
                "the POS API answers only to a loopback Host (127.0.0.1, localhost or [::1])",
                title="Misdirected request",
            )
            await deny(scope, receive, send)
            return
        if path not in self.OPEN and not self._authorized(scope["headers"]):
            deny = problem(401, "unauthorized", f"missing or wrong {TOKEN_HEADER} header")
            await deny(scope, receive, send)
            return
        length = declared_length(scope["headers"])
        if length is not None and length > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if has_body(scope["headers"]):  # read (bounded) before any handler, the lane's too
            try:
                async with asyncio.timeout(self.body_timeout):
                    body = await read_body(receive, self.max_body_bytes)
            except BodyTooLarge:
                await self._too_large(scope, receive, send)
                return
            except TimeoutError:
                await self._closing(
                    problem(
                        408,
                        "body_timeout",
                        f"the request body did not arrive within {self.body_timeout:g} s",
                        title="Request timeout",
                    ),
                    scope,
                    receive,
                    send,
                )
                return
            receive = replaying(body, receive)
        if scope["method"] == "POST" and path.startswith(self.CHEQUES):
            # /v1/cheques/{cheque_id}/{action}: an id never holds '/', as in the route
            cheque_id, _, action = path[len(self.CHEQUES) :].partition("/")
            handler = self._lane.get(action)
            if handler is not None and cheque_id:

                async def answer(_: Receive, __: Send) -> Response:
                    try:
                        return await handler(cheque_id)
                    except Exception as exc:  # every failure becomes a problem body
                        return problem_for(exc)

                response = await unless_gone(
                    answer, receive, send, f"{action} of cheque {cheque_id}", grace=WATCH_AFTER
                )
                if response is not None:  # None: the POS hung up before its turn
                    await response(scope, receive, send)
                return
        if path.startswith(self.WAITING):  # its handler waits for the register's turn
            what = "a card balance" if path.startswith("/v1/cards/") else path  # no card number
            await unless_gone(
                lambda relayed, sending: self.api(scope, relayed, sending), receive, send, what
            )
            return
        await self.api(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._closing(
            problem(
                413,
                "body_too_large",
                f"the request body is over {self.max_body_bytes} bytes",
                title="Payload too large",
            ),
            scope,
            receive,
            send,
        )

    @staticmethod
    async def _closing(refusal: Response, scope: Scope, receive: Receive, send: Send) -> None:
        """A refusal after which the connection closes: the rest of the body is never read."""
        refusal.headers["connection"] = "close"
        await refusal(scope, receive, send)
