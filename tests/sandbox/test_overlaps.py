"""Requests of one register that overlap are refused with PurchaseOperationConflict.

Ordering uses the server's in-flight tally (`wait_busy`) and `set_latency(0)` to release a
held request: no sleeps, and the outcome does not depend on thread scheduling.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from sandbox.server import SandboxServer
from tests.sandbox.wire import Api, parse

BALANCE = {
    "operationDate": "2026-11-29T14:00:00",
    "identifier": {"type": "CardNumber", "value": "2775000000012"},
}


def _balance(client: httpx.Client, op_id: str) -> dict[str, Any]:
    from bridge.loyalty.protocol import dumps

    response = client.post(
        "/v1.2/Processing/Balance", content=dumps({"operationId": op_id, **BALANCE})
    )
    assert response.status_code == 200
    answer: dict[str, Any] = parse(response)
    return answer


def _client(
    server: SandboxServer, login: str = "register-1", password: str = "secret-1"
) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(login, password), timeout=30)


def test_sequential_requests_never_overlap(sandbox: SandboxServer, api: Api) -> None:
    sandbox.set_latency(0.002)
    with _client(sandbox) as client:
        for i in range(40):
            assert _balance(client, f"seq-{i}")["code"] == "Ok"
    status = api.status()
    assert status["overlaps"] == 0
    assert status["byOperation"]["balance"] == 40


def test_parallel_requests_of_one_register_conflict(sandbox: SandboxServer, api: Api) -> None:
    threads_n = 20
    clients = [_client(sandbox) for _ in range(threads_n)]
    for i, client in enumerate(clients):  # connect each one, sequentially
        assert _balance(client, f"warm-{i}")["code"] == "Ok"
    api.admin.post("/sandbox/reset-counters")
    sandbox.set_latency(30)  # the first request in is held until released below
    codes: Counter[str] = Counter()
    done = threading.Condition()
    start = threading.Barrier(threads_n)

    def run(i: int) -> None:
        start.wait()
        code = _balance(clients[i], f"par-{i}")["code"]
        with done:
            codes[code] += 1
            done.notify_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    try:
        with done:
            assert done.wait_for(lambda: sum(codes.values()) == threads_n - 1, timeout=30)
    finally:
        sandbox.set_latency(0)
        for t in threads:
            t.join(timeout=30)
        for client in clients:
            client.close()
    assert codes == {"PurchaseOperationConflict": threads_n - 1, "Ok": 1}
    status = api.status()
    assert status["overlaps"] == threads_n - 1
    assert status["byCode"]["PurchaseOperationConflict"] == threads_n - 1


def test_registers_do_not_block_each_other(sandbox: SandboxServer) -> None:
    sandbox.set_latency(30)
    results: dict[str, str] = {}

    def run(login: str, password: str) -> None:
        with _client(sandbox, login, password) as client:
            results[login] = _balance(client, f"{login}-1")["code"]

    one = threading.Thread(target=run, args=("register-1", "secret-1"))
    two = threading.Thread(target=run, args=("register-2", "secret-2"))
    one.start()
    two.start()
    try:
        assert sandbox.in_flight.wait_busy("register-1", timeout=10)
        assert sandbox.in_flight.wait_busy("register-2", timeout=10)  # both held at once
        with _client(sandbox) as client:
            assert _balance(client, "intruder")["code"] == "PurchaseOperationConflict"
    finally:
        sandbox.set_latency(0)
        one.join(timeout=30)
        two.join(timeout=30)
    assert results == {"register-1": "Ok", "register-2": "Ok"}
