"""The till never freezes behind a stuck processing: real service, real sandbox behind a
fault proxy, real sockets.

- Under a trickle, a stall after the headers and a black hole, a calculate, an unrelated
  confirm queued behind it and a balance are all answered within deadline + 0.5 s, and
  the register says offline.
- A call whose POS client hung up before its turn is not sent.
- `posbridge run` exits 0 within 5 s of SIGTERM while a confirm is stuck at processing,
  and the stuck step is resent with the same ids after the restart.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import parse
from bridge.loyalty.journal import EntryStatus, Journal
from bridge.loyalty.protocol import loads
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD, admin
from tests.fault_proxy import FaultProxy, fault_proxy
from tests.net import free_port
from tests.service.conftest import TOKEN
from tests.service.sse import SseReader

ROOT = Path(__file__).resolve().parents[2]
CARD = "2775000000012"
MILK = {"goodsId": "1001", "name": "Milk", "price": "89.90", "quantity": "2"}
SOAP = {"goodsId": "5001", "name": "Dish soap", "price": "150.00", "quantity": 1}
DEADLINE = 1.0
SLACK = 0.5
SLOW = {"trickle": {"interval": 0.2}, "headers": {}, "blackhole": {}}
HEADERS = {"X-Posbridge-Token": TOKEN}


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


@pytest.fixture
def service(proxy: FaultProxy, tmp_path: Path) -> Iterator[Service]:
    cfg = parse(
        {
            "processing": {
                "url": proxy.url,
                "login": LOGIN,
                "password": PASSWORD,
                "lock_file": str(tmp_path / "processing.lock"),
                "read_timeout": 5.0,
                "deadline": DEADLINE,
            },
            # the replayer must not probe during the measurement: its first retry is far away
            "journal": {
                "path": str(tmp_path / "journal.sqlite"),
                "probe_min_seconds": 30,
                "probe_max_seconds": 60,
            },
            "api": {"port": free_port(), "token": TOKEN},
        }
    )
    svc = Service(cfg, TOKEN, devices=False).start()
    yield svc
    svc.stop()


@pytest.fixture
def api(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=HEADERS, timeout=30) as c:
        yield c


def body(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return loads(response.content)


def open_cheque(api: httpx.Client) -> str:
    return str(body(api.post("/v1/cheques", json={"card": CARD, "lines": [MILK, SOAP]}))["id"])


@pytest.mark.parametrize("fault", sorted(SLOW))
def test_till_calls_behind_a_stuck_processing_answer_within_the_deadline(
    fault: str, proxy: FaultProxy, api: httpx.Client, service: Service
) -> None:
    first, second = open_cheque(api), open_cheque(api)
    assert body(api.post(f"/v1/cheques/{second}/calculate"))["offline"] is False  # online
    proxy.set_fault(fault, **SLOW[fault])
    before = len(proxy.events)
    answers: dict[str, tuple[float, Any]] = {}

    def timed(name: str, call: Callable[[], httpx.Response]) -> None:
        answer = call()
        answers[name] = (time.monotonic() - start, body(answer))

    start = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        calc = pool.submit(timed, "calculate", lambda: api.post(f"/v1/cheques/{first}/calculate"))
        proxy.wait_event(lambda e: e.fault == fault)  # the calculate is stuck at processing
        confirm = pool.submit(timed, "confirm", lambda: api.post(f"/v1/cheques/{second}/confirm"))
        balance = pool.submit(timed, "balance", lambda: api.get(f"/v1/cards/{CARD}/balance"))
        for done in (calc, confirm, balance):
            done.result(timeout=DEADLINE + 30)
    for name, (took, _) in answers.items():
        assert took <= DEADLINE + SLACK, f"{fault}: {name} answered after {took:.2f} s"
    calculated, confirmed, bal = (answers[n][1] for n in ("calculate", "confirm", "balance"))
    assert calculated["offline"] is True and calculated["discount"] == 0
    assert confirmed["state"] == "confirmed" and confirmed["queued"] is True
    assert bal["offline"] is True and bal["balance"] is None
    assert body(api.get("/v1/status"))["connectivity"] == "offline"
    live = [e for e in proxy.events[before:] if e.path.endswith(("/Calculate", "/Balance"))]
    assert len(live) == 1  # only the stuck calculate went out; the balance was not sent
    # (the journal's replayer may retry the confirm's steps: they are kept, not waited for)
    assert service.register.offline.journal.counts().pending >= 1  # the confirm is kept


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


@pytest.mark.parametrize("fault", ["huge", "endless"])
def test_huge_or_endless_answers_are_unreadable_and_cost_no_memory(
    fault: str, proxy: FaultProxy, api: httpx.Client, service: Service
) -> None:
    first, second = open_cheque(api), open_cheque(api)
    assert body(api.post(f"/v1/cheques/{second}/calculate"))["offline"] is False
    proxy.set_fault(fault)
    peak = _peak_rss_kb()
    for call, check in (
        (
            lambda: api.post(f"/v1/cheques/{first}/calculate"),
            lambda out: out["offline"] is True and out["discount"] == 0,
        ),
        (
            lambda: api.post(f"/v1/cheques/{second}/confirm"),
            lambda out: out["state"] == "confirmed" and out["queued"] is True,
        ),
        (lambda: api.get(f"/v1/cards/{CARD}/balance"), lambda out: out["offline"] is True),
    ):
        start = time.monotonic()
        out = body(call())
        assert time.monotonic() - start <= DEADLINE + SLACK
        assert check(out), out
    proxy.wait_hangups(1)  # the register closed the connection instead of reading on
    grown = _peak_rss_kb() - peak
    assert grown < 30_000, f"{fault}: peak RSS grew by {grown} kB"
    # an unreadable answer is not "unreachable": the register keeps trying, the confirm waits
    assert body(api.get("/v1/status"))["connectivity"] == "recovering"
    assert service.register.offline.journal.counts().pending >= 1


class _Said(logging.Handler):
    """Sets `event` when a record's message contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.mark.parametrize("call", ["calculate", "balance"])  # the till lane, a FastAPI route
def test_a_call_whose_client_hung_up_before_its_turn_is_not_sent(
    call: str, proxy: FaultProxy, api: httpx.Client, service: Service
) -> None:
    gone, kept = open_cheque(api), open_cheque(api)
    sequencer = service.register.offline.client.exclusive()
    busy, release = threading.Event(), threading.Event()
    sequencer.submit(lambda: (busy.set(), release.wait(30)))  # the sender is busy elsewhere
    assert busy.wait(5)
    said = _Said("went away")
    logger = logging.getLogger("posbridge.api")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(said)
    try:
        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            line = (
                f"POST /v1/cheques/{gone}/calculate"
                if call == "calculate"
                else f"GET /v1/cards/{CARD}/balance"
            )
            sock.sendall(
                f"{line} HTTP/1.1\r\nHost: {host}\r\n"
                f"X-Posbridge-Token: {TOKEN}\r\nContent-Length: 0\r\n\r\n".encode()
            )
        # the POS hung up; the service notices while the call waits for its turn
        assert said.event.wait(10), "the service did not notice the POS hanging up"
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
        release.set()
    assert body(api.post(f"/v1/cheques/{kept}/calculate"))["offline"] is False
    assert body(api.get(f"/v1/cards/{CARD}/balance"))["offline"] is False
    calculates = [e for e in proxy.events if e.path.endswith("/Calculate")]
    balances = [e for e in proxy.events if e.path.endswith("/Balance")]
    # the kept cheque's calculate and the last balance; the abandoned call was never sent
    assert (len(calculates), len(balances)) == (1, 1)
    assert body(api.get(f"/v1/cheques/{gone}"))["state"] == "open"


# ---------------------------------------------------------------------- SIGTERM


def _config(tmp_path: Path, url: str, port: int) -> Path:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "lock"}"\nread_timeout = 60.0\ndeadline = 60.0\n'
        f'[journal]\npath = "{tmp_path / "j.sqlite"}"\nprobe_min_seconds = 0.05\n'
        f"probe_max_seconds = 0.2\n"
        f'[api]\nport = {port}\ntoken = "{TOKEN}"\n'
    )
    return cfg


def _start(cfg: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "--log-level", "INFO", "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # the service says when it is up: no polling, no sleeping
        if "Uvicorn running" in line or "Application startup" in line or "running on" in line:
            return proc
    raise AssertionError(f"the service did not start (exit {proc.wait()})")


def test_sigterm_exits_promptly_while_a_confirm_is_stuck_and_it_is_resent_after(
    proxy: FaultProxy, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    port = free_port()
    cfg = _config(tmp_path, proxy.url, port)
    base = f"http://127.0.0.1:{port}"
    proc = _start(cfg)
    try:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=90) as api:
            cid = open_cheque(api)
            calculated = body(api.post(f"/v1/cheques/{cid}/calculate"))
            assert calculated["offline"] is False
            proxy.set_fault("blackhole")  # processing accepts the next step, never answers
            confirm: Future[httpx.Response] = Future()
            threading.Thread(
                target=lambda: confirm.set_result(api.post(f"/v1/cheques/{cid}/confirm")),
                daemon=True,
            ).start()
            stuck = proxy.wait_event(lambda e: e.fault == "blackhole")
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
            took = time.monotonic() - start
            assert took <= 5.0, f"exit took {took:.1f} s"
            answered = body(confirm.result(timeout=10))  # the till got its answer
            assert answered["state"] == "confirmed" and answered["queued"] is True
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = Journal(tmp_path / "j.sqlite")
    try:
        pending = journal.pending_page(0, 100)
        assert [e.path for e in pending][:1] == [stuck.path.removeprefix("/publicapi")]
        kept = {e.seq: e.payload() for e in pending}  # the stuck step and the confirm
        assert journal.counts().pending == len(kept) == 2
    finally:
        journal.close()
    proxy.set_fault("refuse")  # until the test listens to the service's events
    proc = _start(cfg)
    try:
        events = SseReader(f"{base}/v1/events", TOKEN)
        proxy.set_fault("pass")  # the replayer resends the journal by itself
        try:
            while events.next("connectivity", timeout=20)["state"] != "online":
                pass  # online again once the journal is empty
        finally:
            events.close()
        resent = proxy.wait_event(lambda e: e.path == stuck.path and e.fault == "pass")
        assert resent.forwarded and resent.answered
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = Journal(tmp_path / "j.sqlite")
    try:
        for seq, payload in kept.items():  # sent as stored: the very bytes, the same ids
            entry = journal.get(seq)
            assert (
                entry is not None
                and entry.status == EntryStatus.DONE
                and entry.payload() == payload
            )
    finally:
        journal.close()
    purchase = admin(sandbox_server, f"purchases/{calculated['purchaseId']}")
    assert purchase["status"] == "confirmed", purchase
