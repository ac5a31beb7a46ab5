"""The POS API against a hostile local process, and a careless POS integration.

Everything here talks to the real service process (`posbridge run`, as systemd starts
it) over loopback, under a descriptor limit of 1,024 as on a stock register.  One process
serves the whole module; each test leaves it as it found it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.loyalty.protocol import loads
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port
from tests.service.conftest import TOKEN
from tests.service.test_api import ACTIVE, MILK, SOAP

ROOT = Path(__file__).resolve().parents[2]
SERVICE_NOFILE = 1024
HEADERS = {"X-Posbridge-Token": TOKEN}
MiB = 1024 * 1024
HEADER_TIMEOUT = 5.0  # the default


@dataclass
class Running:
    proc: subprocess.Popen[str]
    port: int
    stderr: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def raw(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


# `python -m bridge` under a soft descriptor limit of 1,024, set by the child itself (no
# preexec_fn: this test process runs the sandbox's threads)
LAUNCH = (
    "import resource, runpy; hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SERVICE_NOFILE}, hard)); "
    "runpy.run_module('bridge', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("hostile")
    with SandboxServer(tmp / "processing.db") as sandbox:
        port = free_port()
        token_file = tmp / "api.token"
        token_file.write_text(TOKEN)
        token_file.chmod(0o600)
        cfg = tmp / "posbridge.toml"
        cfg.write_text(
            f'[processing]\nurl = "{sandbox.url}"\nlogin = "{LOGIN}"\n'
            f'password = "{PASSWORD}"\nlock_file = "{tmp / "lock"}"\n'
            f'[journal]\npath = "{tmp / "j.sqlite"}"\n'
            f'[api]\nport = {port}\ntoken_file = "{token_file}"\n'
        )
        cfg.chmod(0o600)
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "--config", str(cfg), "--log-level", "INFO", "run"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stderr is not None
        running = Running(proc, port)
        try:
            for line in proc.stderr:  # the service says when it is up
                running.stderr.append(line)
                if "Uvicorn running" in line:
                    break
            else:
                pytest.fail("the service did not start:\n" + "".join(running.stderr))
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            assert f"Max open files            {SERVICE_NOFILE} " in limits, limits
            drain = threading.Thread(target=running.stderr.extend, args=(proc.stderr,), daemon=True)
            drain.start()
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def api(service: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=HEADERS, timeout=10) as client:
        yield client


@pytest.fixture
def many_fds() -> Iterator[None]:
    """The test itself holds over a thousand sockets: its soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard descriptor limit {hard} is too low to open 1,100 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    doc = loads(response.content)
    assert isinstance(doc, dict) and doc["status"] == response.status_code
    return doc


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, read off a kept-alive connection."""
    got = b""
    while b"\r\n\r\n" not in got:
        part = sock.recv(65536)
        assert part, got
        got += part
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        part = sock.recv(65536)
        assert part
        body += part
    return head + b"\r\n\r\n" + body


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """What the server sends until it closes the connection (or until `deadline`)."""
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            part = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not part:
            break
        got += part
    return got


def open_cheque(api: httpx.Client) -> str:
    r = api.post("/v1/cheques", json={"card": ACTIVE, "lines": [MILK, SOAP]})
    assert r.status_code == 201, r.text
    return str(loads(r.content)["id"])


# ---------------------------------------------------------------------- bodies


def test_a_300_mb_declared_body_is_refused_at_once(service: Running) -> None:
    peak_before = service.status_kib("VmHWM")
    with service.raw() as sock:
        sock.sendall(
            b"POST /v1/cheques HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Posbridge-Token: "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(300 * MiB).encode() + b'\r\n\r\n{"lines": ['
        )
        started = time.monotonic()
        answer = read_answer(sock, started + 3)
        elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"application/problem+json" in head and b"connection: close" in head.lower()
    assert loads(body)["code"] == "body_too_large"
    assert elapsed < 1.0
    assert service.status_kib("VmHWM") - peak_before < 16 * 1024


@pytest.mark.parametrize("path", ["/v1/cheques", "/v1/cheques/{cid}/calculate"])
def test_a_300_mb_chunked_body_is_cut_off_and_memory_stays_flat(
    service: Running, api: httpx.Client, path: str
) -> None:
    """No length announced: the body is counted as it arrives and refused past 1 MiB,
    the till lane's calls (which ignore bodies) included."""
    path = path.format(cid=open_cheque(api))
    peak_before = service.status_kib("VmHWM")
    chunk = b"x" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    answer = b""
    with service.raw() as sock:
        sock.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Posbridge-Token: " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        started = time.monotonic()
        while sent < 300 * MiB:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            assert sent <= 32 * MiB, "the service kept reading a body far over its limit"
        answer = read_answer(sock, time.monotonic() + 3)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert loads(answer.partition(b"\r\n\r\n")[2])["code"] == "body_too_large"
    assert elapsed < 2.0
    assert service.status_kib("VmHWM") - peak_before < 16 * 1024


def test_a_body_at_the_limit_is_read_and_one_over_is_not(api: httpx.Client) -> None:
    fits = b'{"lines": []}'.ljust(MiB)  # trailing blanks are valid JSON
    r = api.post("/v1/cheques", content=fits, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = api.post("/v1/cheques", content=fits + b" ", headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and problem_of(r)["code"] == "body_too_large"


def test_deeply_nested_json_is_a_problem(api: httpx.Client) -> None:
    for depth, status, code in ((100_000, 400, "invalid_json"), (400, 422, "invalid_request")):
        nested = b'{"lines": ' + b"[" * depth + b"]" * depth + b"}"
        r = api.post("/v1/cheques", content=nested, headers={"Content-Type": "application/json"})
        assert r.status_code == status, r.text[:300]
        assert problem_of(r)["code"] == code


def test_framework_refusals_are_problems_too(api: httpx.Client) -> None:
    r = api.get("/v1/no-such-thing")
    assert r.status_code == 404 and problem_of(r)["code"] == "not_found"
    r = api.delete("/v1/status")
    assert r.status_code == 405 and problem_of(r)["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    r = api.post("/v1/cheques", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and problem_of(r)["code"] == "invalid_request"


# ---------------------------------------------------------------------- money


def test_a_line_amount_must_match_price_times_quantity(api: httpx.Client) -> None:
    greedy = {"goodsId": "1", "name": "Gum", "price": "1", "quantity": "1", "amount": "1000000"}
    r = api.post("/v1/cheques", json={"card": ACTIVE, "lines": [greedy]})
    assert r.status_code == 422
    problem = problem_of(r)
    assert problem["code"] == "amount_mismatch"
    assert "amount 1000000" in problem["detail"] and "= 1.00" in problem["detail"]
    cid = open_cheque(api)
    r = api.post(f"/v1/cheques/{cid}/lines", json={"lines": [greedy]})
    assert r.status_code == 422 and "amount" in problem_of(r)["detail"]
    assert len(loads(api.get(f"/v1/cheques/{cid}").content)["lines"]) == 2  # nothing added


def test_an_amount_within_the_cent_or_after_a_stated_discount_is_taken(api: httpx.Client) -> None:
    # 3 x 0.335 kg = 1.005: 1.00 and 1.01 are both that to the cent; 1.02 is not
    weighed = {"goodsId": "7", "name": "Nuts", "price": "0.335", "quantity": "3"}
    r = api.post("/v1/cheques", json={"lines": [weighed]})
    assert r.status_code == 422  # a price has 2 decimals at most
    weighed = {"goodsId": "7", "name": "Nuts", "price": "3.35", "quantity": "0.3"}  # 1.005
    lines = [
        weighed | {"amount": "1.00"},
        weighed | {"amount": "1.01"},
        weighed,
        MILK | {"discount": "9.80", "amount": "170.00"},
    ]
    r = api.post("/v1/cheques", json={"lines": lines})
    assert r.status_code == 201, r.text
    amounts = [ln["amount"] for ln in loads(r.content)["lines"]]
    assert [str(a) for a in amounts] == ["1.00", "1.01", "1.01", "170.00"]  # omitted: half up
    r = api.post("/v1/cheques", json={"lines": [weighed | {"amount": "1.02"}]})
    assert r.status_code == 422 and "amount 1.02" in problem_of(r)["detail"]
    r = api.post("/v1/cheques", json={"lines": [MILK | {"discount": "200"}]})
    assert r.status_code == 422 and problem_of(r)["code"] == "discount_too_large"


def test_a_cheque_total_is_at_most_a_billion(api: httpx.Client) -> None:
    big = {"goodsId": "9", "name": "Car", "price": "600000000", "quantity": "1"}
    r = api.post("/v1/cheques", json={"lines": [big, big]})
    assert r.status_code == 422 and problem_of(r)["code"] == "total_too_large"
    assert "1000000000" in problem_of(r)["detail"]
    r = api.post("/v1/cheques", json={"lines": [big]})
    assert r.status_code == 201
    # appending line by line cannot get past the cap either, and the cheque is unchanged
    cheque_id = loads(r.content)["id"]
    r = api.post(f"/v1/cheques/{cheque_id}/lines", json={"lines": [big]})
    assert r.status_code == 422 and problem_of(r)["code"] == "total_too_large", r.text
    assert len(loads(api.get(f"/v1/cheques/{cheque_id}").content)["lines"]) == 1


# ---------------------------------------------------------------------- Host


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8765",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "127.0.0.1:80@evil.example",
        "[::1].evil.example",
        "127.0.0.1:notaport",
        "",
    ],
)
def test_a_foreign_host_name_is_refused(service: Running, host: str) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 reads nothing, not even
    the open OpenAPI document."""
    for path in ("/openapi.json", "/v1/status"):
        r = httpx.get(service.url + path, headers={**HEADERS, "Host": host}, timeout=10)
        assert r.status_code == 421, (host, path)
        assert problem_of(r)["code"] == "bad_host"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "LOCALHOST", "{port}", "localhost:{port}", "[::1]:{port}"],
)
def test_loopback_host_names_are_served(service: Running, host: str) -> None:
    host = host.format(port=service.port)
    if host == str(service.port):
        host = f"127.0.0.1:{service.port}"
    r = httpx.get(service.url + "/openapi.json", headers={"Host": host}, timeout=10)
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------- connections


def test_headers_or_a_body_that_never_finish_are_cut_off(service: Running) -> None:
    with service.raw() as slow, service.raw() as idle, service.raw() as kept, service.raw() as body:
        slow.sendall(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        body.sendall(
            b"POST /v1/cheques HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Posbridge-Token: "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"lines": '
        )
        # a kept-alive connection whose next request stalls half-way is cut off as well
        kept.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(kept).startswith(b"HTTP/1.1 200 ")
        kept.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        answers = [read_answer(s, started + HEADER_TIMEOUT + 3) for s in (slow, idle, kept, body)]
        elapsed = time.monotonic() - started
    assert answers[0].startswith(b"HTTP/1.1 408 ") and b"header_timeout" in answers[0]
    assert answers[1] == b""  # sent nothing: closed without a word
    assert answers[2].startswith(b"HTTP/1.1 408 ")
    assert answers[3].startswith(b"HTTP/1.1 408 ") and b"body_timeout" in answers[3]
    assert elapsed < HEADER_TIMEOUT + 2


def test_oversized_headers_are_refused(service: Running) -> None:
    with service.raw() as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for _ in range(80):
            try:
                sock.sendall(b"X-Junk: " + b"j" * 1000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = read_answer(sock, time.monotonic() + 3)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"headers_too_large" in answer


def test_garbage_is_a_problem_too(service: Running) -> None:
    with service.raw() as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = read_answer(sock, time.monotonic() + 3)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in answer


def test_the_till_gets_through_1100_slowloris_connections(
    service: Running, api: httpx.Client, many_fds: None
) -> None:
    cid = open_cheque(api)
    attackers: list[socket.socket] = []
    try:
        for _ in range(1100):  # the kernel completes each connection, accepted or not
            sock = service.raw()
            attackers.append(sock)
            with contextlib.suppress(OSError):  # the service may have closed it already
                sock.sendall(
                    b"POST /v1/cheques/" + cid.encode() + b"/calculate HTTP/1.1\r\n"
                    b"Host: 127.0.0.1\r\nX-Posbridge-Token: "
                )
        started = time.monotonic()
        with httpx.Client(base_url=service.url, headers=HEADERS, timeout=5) as till:
            r = till.post(f"/v1/cheques/{cid}/calculate")
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert loads(r.content)["state"] == "calculated"
        assert elapsed < 1.0, f"the till waited {elapsed:.2f} s"
        assert service.open_fds() < SERVICE_NOFILE - 64  # room left for devices and logs
    finally:
        for sock in attackers:
            sock.close()
    r = api.get("/v1/status")  # the POS's kept-alive client is served again
    assert r.status_code == 200
