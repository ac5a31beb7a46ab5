"""The HTTP surface: auth, malformed requests, routing, stop/restart on the same file."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import httpx
import pytest

from sandbox.server import SandboxServer
from tests.sandbox.wire import CARD, Api, D, line, parse

BALANCE = (
    b'{"operationId":"x","operationDate":"2026-11-29T14:00:00",'
    b'"identifier":{"value":"2775000000012"}}'
)


@pytest.mark.parametrize(
    "auth",
    [None, ("register-1", "wrong"), ("nobody", "secret-1"), ("register-1", "")],
)
def test_bad_credentials_get_401(sandbox: SandboxServer, auth: tuple[str, str] | None) -> None:
    response = httpx.post(f"{sandbox.url}/v1.2/Processing/Balance", content=BALANCE, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert parse(response)["errorMessage"]


def test_garbage_authorization_header_gets_401(sandbox: SandboxServer) -> None:
    for header in ("Basic !!!", "Bearer abc", "Basic " + "a" * 7):
        response = httpx.post(
            f"{sandbox.url}/v1.2/Processing/Balance",
            content=BALANCE,
            headers={"Authorization": header},
        )
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b"", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (
            b'{"operationId":"x","operationDate":"2026-11-29T14:00:00+03:00"}',
            "operationDate",
        ),
        (b'{"operationId":"x","operationDate":"yesterday"}', "operationDate"),
        (b'{"operationDate":"2026-11-29T14:00:00"}', "operationId"),
        (b'{"operationId":"x","operationDate":"2026-11-29T14:00:00","extra":1}', "extra"),
    ],
)
def test_malformed_requests_get_400_naming_the_fault(api: Api, body: bytes, named: str) -> None:
    response = api.raw("/v1.2/Processing/Balance", body)
    assert response.status_code == 400
    answer = parse(response)
    assert answer["code"] == "SystemError"
    assert named in answer["errorMessage"]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("amount", "10.005", "more than 2 decimals"),
        ("quantity", "1.0001", "more than 3 decimals"),
        ("amount", "-1", "amount"),
        ("amount", "1e30", "10^15"),
        ("position", "0", "position"),
    ],
)
def test_bad_cheque_lines_get_400(api: Api, field: str, value: str, named: str) -> None:
    bad = line(1, "5001", "10.00") | {field: D(value)}
    response = api.raw(
        "/v1.2/Processing/Purchases/p-bad/Calculate",
        {"operationId": "c", "operationDate": "2026-11-29T14:00:00", "cheque": api.cheque([bad])},
    )
    assert response.status_code == 400
    message = parse(response)["errorMessage"]
    assert named in message
    assert "cheque.lines.0" in message


def test_duplicate_positions_get_400(api: Api) -> None:
    lines = [line(1, "5001", "10.00"), line(1, "1001", "10.00")]
    response = api.raw(
        "/v1.2/Processing/Purchases/p-dup/Bonus",
        {"operationId": "d", "operationDate": "2026-11-29T14:00:00", "cheque": api.cheque(lines)},
    )
    assert response.status_code == 400
    assert "appears twice" in parse(response)["errorMessage"]
    assert api.admin.get("/sandbox/purchases/p-dup").status_code == 404  # nothing kept


def test_unknown_path_404_wrong_method_405(api: Api) -> None:
    assert api.http.post("/v1.2/Processing/Nope", content=b"{}").status_code == 404
    assert api.admin.get("/elsewhere").status_code == 404
    assert api.admin.get("/sandbox/nope").status_code == 404
    assert api.admin.get("/sandbox/ledger/2775000000999").status_code == 404
    assert api.admin.get("/sandbox/purchases/none").status_code == 404
    wrong = api.http.get("/v1.2/Processing/Balance")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert parse(wrong)["code"] == "SystemError"
    assert api.http.head("/v1.2/Processing/Balance").status_code == 405
    assert api.http.options("/v1.2/Processing/Balance").status_code == 405
    assert api.admin.head("/sandbox/status").status_code == 405
    assert api.admin.post("/sandbox/status").status_code == 405
    assert api.admin.get("/sandbox/reset-counters").status_code == 405


def test_keep_alive_serves_many_requests_on_one_connection(api: Api) -> None:
    for i in range(20):
        assert api.balance(op_id=f"ka-{i}")["code"] == "Ok"
    assert api.http.post("/v1.2/Processing/Balance", content=b"{").status_code == 400
    assert api.balance()["code"] == "Ok"  # the connection survived a bad request


def test_reset_counters(api: Api) -> None:
    api.balance()
    assert api.status()["requests"] == 1
    assert api.admin.post("/sandbox/reset-counters").status_code == 200
    status = api.status()
    assert (status["requests"], status["byOperation"], status["byCode"]) == (0, {}, {})


def test_stop_refuses_connections_and_restart_keeps_data(tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    first = SandboxServer(db).start()
    api = Api(first)
    try:
        api.sale("p-keep", [line(1, "1001", "100.00")])
        assert api.balance()["balance"] == D("505.00")
        port = first.port
        first.stop()
        with pytest.raises(httpx.ConnectError):
            api.balance()  # the pooled keep-alive connection is gone too
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        second = SandboxServer(db, port=port).start()
        try:
            assert second.url == first.url
            assert api.balance()["balance"] == D("505.00")
            assert api.purchase("p-keep")["status"] == "confirmed"
            assert api.confirm("p-keep")["code"] == "OperationIsConfirmed"
        finally:
            second.stop()
        first.start()  # the same object comes back as well
        assert api.ledger(CARD)["accrued"] == D("5.00")
    finally:
        api.close()
        first.stop()


def test_stop_releases_a_held_request(sandbox: SandboxServer, api: Api) -> None:
    import threading

    sandbox.set_latency(60)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            api.balance()
        except httpx.HTTPError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert sandbox.in_flight.wait_busy("register-1", timeout=10)
    sandbox.stop()  # must not wait out the 60 s
    worker.join(timeout=10)
    assert not worker.is_alive()


def test_database_file_is_owner_only(sandbox: SandboxServer) -> None:
    mode = stat.S_IMODE(sandbox.db_path.stat().st_mode)
    assert mode == 0o600
