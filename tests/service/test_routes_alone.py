"""Each route module of the POS API can be mounted alone and answers like the whole app.

A bare FastAPI app gets one router and a real register (in front of a real sandbox),
without the front door or the other routers; the till lane's handlers are the very
functions the routes call, and can be called with no FastAPI at all.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from bridge import __version__
from bridge.api.app import ROUTERS, add_problem_handlers
from bridge.api.routes import cheques, status
from bridge.loyalty.protocol import loads
from bridge.service.register import Register
from sandbox.server import SandboxServer
from tests.service.conftest import service_config
from tests.service.test_api import ACTIVE, MILK, SOAP


@pytest.fixture
def register(tmp_path: Path, sandbox_server: SandboxServer) -> Iterator[Register]:
    reg = Register(service_config(tmp_path, sandbox_server.url), devices=False)
    reg.start()
    yield reg
    reg.stop()


class Alone:
    """One router on a bare app (no token door, no other routes), called in process."""

    def __init__(self, router: APIRouter, register: Register) -> None:
        self.app = FastAPI()
        self.app.state.register = register
        add_problem_handlers(self.app)
        self.app.include_router(router)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://posbridge") as c:
                response = await c.request(method, path, **kw)
                await response.aread()
                return response

        return asyncio.run(call())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)


def test_the_status_router_alone(register: Register) -> None:
    client = Alone(status.router, register)
    r = client.get("/v1/status")
    assert r.status_code == 200, r.text
    assert loads(r.content)["version"] == __version__
    assert client.get("/v1/cheques/x").status_code == 404  # no other router is mounted
    assert set(client.get("/openapi.json").json()["paths"]) == {"/v1/status", "/metrics"}


def test_the_cheques_router_alone(register: Register) -> None:
    client = Alone(cheques.router, register)
    r = client.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK, SOAP]})
    assert r.status_code == 201, r.text
    cid = loads(r.content)["id"]
    r = client.post(f"/v1/cheques/{cid}/calculate")
    assert r.status_code == 200, r.text
    assert loads(r.content)["state"] == "calculated"
    assert register.book.get(cid).state == "calculated"
    r = client.get("/v1/cheques/no-such-cheque")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert loads(r.content)["code"] == "cheque_not_found"


def test_the_lane_actions_are_the_routes_handlers() -> None:
    endpoints = {
        route.path: route.endpoint for route in cheques.router.routes if isinstance(route, APIRoute)
    }
    for action, handler in cheques.LANE.items():
        assert endpoints[f"/v1/cheques/{{cheque_id}}/{action}"] is handler


def test_a_lane_handler_called_without_fastapi(register: Register) -> None:
    cheque = register.book.open("T-1", ACTIVE, [])
    answer = asyncio.run(cheques.LANE["cancel"](register, cheque.id))
    assert answer.status_code == 200
    assert loads(bytes(answer.body))["state"] == register.book.get(cheque.id).state == "cancelled"


def test_no_route_runs_on_fastapis_thread_pool() -> None:
    """A plain `def` route would start anyio's worker threads (~0.8 MB of the service);
    every route is a coroutine that hands its blocking part to the register's threads."""
    plain = [
        route.path
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and not inspect.iscoroutinefunction(route.endpoint)
    ]
    assert plain == []


def test_local_work_runs_on_the_registers_threads_and_leaves_room(register: Register) -> None:
    app = Alone(cheques.router, register).app
    before = set(threading.enumerate())  # anyio's idle workers of other tests' loops
    stuck, release = threading.Event(), threading.Event()

    def hold() -> None:  # one local thread held, as by a fiscal print or a slow disk
        stuck.set()
        release.wait(30)

    async def sale() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://posbridge") as c:
            r = await c.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK]})
            assert r.status_code == 201, r.text
            r = await c.get(f"/v1/cheques/{loads(r.content)['id']}")
            assert r.status_code == 200, r.text
        # still on the loop: anyio's workers end with it
        return [t.name for t in threading.enumerate() if t not in before]

    held = register.local_work.submit(hold)
    try:
        assert stuck.wait(10)
        new = asyncio.run(sale())
        assert not held.done()  # answered while the other local thread was still busy
    finally:
        release.set()
    held.result(10)
    assert sum(name.startswith("posbridge-local") for name in new) >= 2, new
    assert not [name for name in new if "AnyIO" in name], new
