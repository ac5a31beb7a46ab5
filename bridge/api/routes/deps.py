"""What every route module shares: the register of the app, the register's turn, and the
problem answers every route documents."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from bridge.api.models import Problem
from bridge.api.problems import Json
from bridge.service.cheque import RegisterCheque
from bridge.service.register import Register

T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
    503: {"model": Problem},
}


async def register_of(request: Request) -> Register:
    """The register the app serves (`app.state.register`).

    A coroutine on purpose: FastAPI runs a plain-function dependency in its thread pool,
    a thread hop on every request for an attribute read."""
    register: Register = request.app.state.register
    return register


RegisterDep = Annotated[Register, Depends(register_of)]


async def in_turn(register: Register, step: Callable[[], T]) -> T:
    """Run a loyalty step on a sender thread of the register, in arrival order.

    The step's requests to processing then run inline there (the thread already holds
    the register's turn), and no API thread blocks waiting for its turn.
    """
    return await register.offline.client.exclusive().acall(step)


async def locally(register: Register, work: Callable[[], T]) -> T:
    """Run a route's local work (the cheque file, a receipt, the status, a fiscal print)
    on the register's local threads: a slow disk or device must not stall the event loop
    the till's lane and the event stream run on.

    Every route is a coroutine and hands its blocking part here: a plain `def` route
    would run on FastAPI's own thread pool (anyio's worker threads), which does the same
    for ~0.8 MB more of the service's memory (bench/service_rss.py)."""
    return await asyncio.get_running_loop().run_in_executor(register.local_work, work)


def cheque_json(cheque: RegisterCheque, status: int = 200) -> Json:
    return Json(cheque.view(), status_code=status)
