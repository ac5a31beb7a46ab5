"""The front door: its till lane answers exactly as FastAPI's routes for the same paths.

The lane's answers come over real uvicorn on loopback; FastAPI's own answers for the
same requests come from the app behind the door, driven in process by httpx's ASGI
transport.  Two cheques rung up the same way must get the same bodies either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from bridge.loyalty.protocol import loads
from bridge.server import Service
from tests.service.conftest import TOKEN
from tests.service.test_api import ACTIVE, MILK, SOAP

HEADERS = {"X-Posbridge-Token": TOKEN}
# what differs between two cheques by design: ids, and the card balance the first one moved
PER_CHEQUE = {"id", "number", "purchaseId", "balanceBefore", "balanceAfter"}


def fastapi_call(service: Service, method: str, path: str) -> httpx.Response:
    """The same request, handed to the FastAPI app behind the front door."""

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=service.app.api)
        async with httpx.AsyncClient(transport=transport, base_url="http://posbridge") as c:
            response = await c.request(method, path, headers=HEADERS)
            await response.aread()
            return response

    return asyncio.run(call())


def comparable(response: httpx.Response) -> tuple[int, str, Any]:
    doc = loads(response.content)
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in PER_CHEQUE}
        if isinstance(doc.get("detail"), str):  # problem texts name the cheque id
            doc["detail"] = doc["detail"].split(" ")[0]
    return response.status_code, response.headers["content-type"], doc


def open_cheque(api: httpx.Client, card: str | None = ACTIVE) -> str:
    r = api.post("/v1/cheques", json={"number": "T-1", "card": card, "lines": [MILK, SOAP]})
    assert r.status_code == 201, r.text
    return str(loads(r.content)["id"])


@pytest.mark.parametrize(
    "steps",
    [
        ["calculate"],
        ["calculate", "confirm"],
        ["confirm"],
        ["cancel"],
        ["calculate", "cancel", "confirm"],
        ["cancel", "calculate"],
    ],
)
def test_lane_and_fastapi_give_the_same_answers(
    service: Service, api: httpx.Client, steps: list[str]
) -> None:
    lane_id, fastapi_id = open_cheque(api), open_cheque(api)
    for step in steps:
        via_lane = api.post(f"/v1/cheques/{lane_id}/{step}")
        via_fastapi = fastapi_call(service, "POST", f"/v1/cheques/{fastapi_id}/{step}")
        assert comparable(via_lane) == comparable(via_fastapi), step


def test_unknown_cheque_is_the_same_problem_both_ways(service: Service, api: httpx.Client) -> None:
    via_lane = api.post("/v1/cheques/no-such-cheque/calculate")
    via_fastapi = fastapi_call(service, "POST", "/v1/cheques/no-such-cheque/calculate")
    assert via_lane.status_code == 404
    assert via_lane.headers["content-type"] == "application/problem+json"
    assert via_lane.content == via_fastapi.content


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/cheques/abc/calculate"),  # wrong method: FastAPI's 405
        ("POST", "/v1/cheques//calculate"),  # no id
        ("POST", "/v1/cheques/a/b/calculate"),  # an id never holds '/'
        ("POST", "/v1/cheques/abc/calculate/"),  # trailing slash
        ("POST", "/v1/cheques/abc/refund-all"),  # not a lane action
    ],
)
def test_what_the_lane_does_not_take_goes_to_fastapi(
    service: Service, api: httpx.Client, method: str, path: str
) -> None:
    via_door = api.request(method, path, follow_redirects=False)
    via_fastapi = fastapi_call(service, method, path)
    assert via_door.status_code == via_fastapi.status_code
    assert via_door.status_code in (307, 404, 405)


def test_the_lane_needs_the_token(service: Service) -> None:
    cid = open_cheque(httpx.Client(base_url=service.url, headers=HEADERS))
    r = httpx.post(f"{service.url}/v1/cheques/{cid}/calculate")
    assert r.status_code == 401 and loads(r.content)["code"] == "unauthorized"
    r = httpx.post(
        f"{service.url}/v1/cheques/{cid}/calculate", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 200


def test_a_bug_in_a_lane_step_is_a_logged_500_problem(
    service: Service,
    api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cid = open_cheque(api)

    def broken(*_: Any) -> Any:
        raise RuntimeError("bug on purpose")

    # A programming error cannot be provoked through a real peer: patch one in.
    monkeypatch.setattr(service.register.book, "calculate", broken)
    with caplog.at_level(logging.ERROR, logger="posbridge.api"):
        r = api.post(f"/v1/cheques/{cid}/calculate")
    assert r.status_code == 500
    problem = loads(r.content)
    assert problem["code"] == "internal_error" and "RuntimeError" in problem["detail"]
    assert problem["cashierMessage"]
    assert any(
        "RuntimeError: bug on purpose" in (rec.exc_text or "") or rec.exc_info
        for rec in caplog.records
    )


def test_a_body_sent_to_the_lane_is_skipped_and_the_connection_goes_on(api: httpx.Client) -> None:
    """POS clients often send `{}` with every POST: the lane ignores it, as FastAPI does,
    and the kept-alive connection carries the next requests cleanly."""
    cid = open_cheque(api)
    first = api.post(f"/v1/cheques/{cid}/calculate", json={"ignored": "x" * 5000})
    second = api.post(f"/v1/cheques/{cid}/calculate", content=b"{}")
    status = api.get("/v1/status")
    assert [first.status_code, second.status_code, status.status_code] == [200, 200, 200]
    assert loads(second.content)["state"] == "calculated"
    assert first.extensions["network_stream"] is status.extensions["network_stream"]


def test_a_websocket_upgrade_is_not_served(service: Service) -> None:
    """The API has no WebSocket endpoint, and the server loads no WebSocket stack."""
    r = httpx.get(
        f"{service.url}/v1/status",
        headers={
            **HEADERS,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert r.status_code == 200 and "devices" in loads(r.content)  # served as plain HTTP
