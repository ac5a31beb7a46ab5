"""The POS API's front door: the token check for every request, and the till lane.

The till lane takes the body-less cheque actions a POS calls on every sale (calculate,
confirm, cancel) straight to the handler FastAPI's route for the same path calls.  On a
register-class CPU FastAPI's stack (error and body-limit middleware, router, parameter
solving, exception wrappers, both ways) costs about 0.5 ms a call, a sixth of a whole
processing round trip; the till waits for every one of them.  Everything else, request
bodies and validation included, stays with FastAPI, and the OpenAPI document describes
the lane's routes as before: they are the same routes.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.api.problems import problem, problem_for

TOKEN_HEADER = "X-Posbridge-Token"  # noqa: S105 - a header name, not a secret
ChequeAction = Callable[[str], Awaitable[Response]]


class FrontDoor:
    """An ASGI app in front of the FastAPI one (which stays reachable as `api`).

    The token comes in X-Posbridge-Token, or as a Bearer token (what Prometheus scrapers
    send); only the OpenAPI document is open.
    """

    OPEN = frozenset({"/openapi.json"})
    CHEQUES = "/v1/cheques/"

    def __init__(self, api: ASGIApp, token: str, lane: Mapping[str, ChequeAction]) -> None:
        self.api = api
        self._token = token.encode()
        self._lane = dict(lane)

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
        if path not in self.OPEN and not self._authorized(scope["headers"]):
            deny = problem(401, "unauthorized", f"missing or wrong {TOKEN_HEADER} header")
            await deny(scope, receive, send)
            return
        if scope["method"] == "POST" and path.startswith(self.CHEQUES):
            # /v1/cheques/{cheque_id}/{action}: an id never holds '/', as in the route
            cheque_id, _, action = path[len(self.CHEQUES):].partition("/")
            handler = self._lane.get(action)
            if handler is not None and cheque_id:
                try:
                    response = await handler(cheque_id)
                except Exception as exc:  # every failure becomes a problem body
                    response = problem_for(exc)
                await response(scope, receive, send)
                return
        await self.api(scope, receive, send)
