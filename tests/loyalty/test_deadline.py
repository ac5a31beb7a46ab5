"""A slow or endless processing costs the till the deadline at most, and the register
a megabyte at most: real sockets on loopback, a real sandbox behind a fault proxy.

Faults: trickle (the real answer a byte at a time), headers (headers, then nothing),
black hole (accept, never answer), a 100 MB Content-Length, a chunked answer that never
ends.  Each calls `LoyaltyClient` (or the `posbridge balance` CLI) and measures the time
to the answer the cashier sees.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bridge.config import ConfigError, parse
from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import Connectivity, LocalResponse, OfflineClient
from bridge.loyalty.protocol import Identifier, Operation
from bridge.loyalty.sequencer import RegisterLock, Sequencer
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.fault_proxy import FaultProxy, fault_proxy

ROOT = Path(__file__).resolve().parents[2]
CARD = "2775000000012"
DEADLINE = 1.0
SLACK = 0.5  # the bound: the cashier's answer within deadline + 0.5 s
SLOW = {  # fault: proxy options
    "trickle": {"interval": 0.2},  # every read is quick, the answer takes a minute
    "headers": {},
    "blackhole": {},
}
T = TypeVar("T")


@pytest.fixture
def proxy(sandbox_server: SandboxServer) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox_server.host, sandbox_server.port) as p:
        yield p


@pytest.fixture
def slow_client(proxy: FaultProxy, tmp_path: Path) -> Iterator[LoyaltyClient]:
    # read_timeout well above the deadline: only the deadline can end these requests
    client = LoyaltyClient(
        proxy.url,
        LOGIN,
        PASSWORD,
        lock_file=tmp_path / "processing.lock",
        read_timeout=5.0,
        deadline=DEADLINE,
    )
    yield client
    client.close()


def timed(fn: Callable[[], T], limit: float) -> tuple[float, T | BaseException]:
    """(seconds, result or exception) of `fn`, run in a thread; fails past `limit` s
    instead of hanging the suite (the code before the fix hung for minutes)."""
    done: Future[T] = Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:
            done.set_exception(exc)

    start = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    try:
        done.exception(timeout=limit)
    except TimeoutError:
        pytest.fail(f"no answer within {limit} s")
    took = time.monotonic() - start
    exc = done.exception()
    return took, (exc if exc is not None else done.result())


# ---------------------------------------------------------------------- deadline


@pytest.mark.parametrize("fault", sorted(SLOW))
def test_a_slow_processing_costs_the_deadline_at_most(
    fault: str, proxy: FaultProxy, slow_client: LoyaltyClient
) -> None:
    slow_client.balance(CARD)  # a healthy call first: the keep-alive connection is reused
    proxy.set_fault(fault, **SLOW[fault])
    took, outcome = timed(lambda: slow_client.balance(CARD), DEADLINE + 10)
    assert isinstance(outcome, errors.ProcessingTimeout), outcome
    assert outcome.offline and outcome.retryable
    assert "deadline" in str(outcome)
    assert took <= DEADLINE + SLACK, f"{fault}: answered after {took:.2f} s"
    proxy.wait_hangups(1)  # the connection is dropped, not left to the trickler
    proxy.set_fault("pass")
    assert slow_client.balance(CARD).ok  # and the next request gets a fresh one


def test_the_deadline_covers_the_whole_exchange_not_each_read(
    proxy: FaultProxy, slow_client: LoyaltyClient
) -> None:
    """A trickle faster than any read timeout still ends at the deadline."""
    proxy.set_fault("trickle", interval=0.05)
    took, outcome = timed(lambda: slow_client.balance(CARD), DEADLINE + 10)
    assert isinstance(outcome, errors.ProcessingTimeout)
    assert DEADLINE - 0.05 <= took <= DEADLINE + SLACK


def test_a_resolver_that_never_answers_costs_the_deadline_at_most(
    proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DNS server that swallows queries holds getaddrinfo for tens of seconds; no
    loopback peer can play that, so the lookup itself is stood in for."""
    real = socket.getaddrinfo
    release = threading.Event()
    asked: list[str] = []

    def black_hole(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "processing.stalled.test":
            asked.append(host)
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", black_hole)
    url = proxy.url.replace("127.0.0.1", "processing.stalled.test")
    client = LoyaltyClient(
        url,
        LOGIN,
        PASSWORD,
        lock_file=tmp_path / "processing.lock",
        connect_timeout=5.0,
        read_timeout=5.0,
        deadline=DEADLINE,
    )
    try:
        took, outcome = timed(lambda: client.balance(CARD), DEADLINE + 10)
    finally:
        release.set()
        client.close()
    assert asked, "the name was looked up"
    assert isinstance(outcome, errors.ProcessingTimeout) and outcome.offline, outcome
    assert took <= DEADLINE + SLACK, f"answered after {took:.2f} s"


def test_a_name_that_resolves_is_connected_to(proxy: FaultProxy, tmp_path: Path) -> None:
    url = proxy.url.replace("127.0.0.1", "localhost")
    with LoyaltyClient(
        url, LOGIN, PASSWORD, lock_file=tmp_path / "processing.lock", deadline=DEADLINE
    ) as client:
        assert client.balance(CARD).ok


def test_deadline_is_a_config_key_above_zero() -> None:
    base = {"processing": {"url": "http://127.0.0.1:9/p", "login": "l", "password": "p"}}
    cfg = parse(base)
    assert cfg.processing.deadline == 8.0
    assert cfg.processing.max_answer_bytes == 1048576
    with pytest.raises(ConfigError, match="deadline"):
        parse({"processing": {**base["processing"], "deadline": 0}})
    with pytest.raises(ValueError, match="deadline"):
        LoyaltyClient("http://127.0.0.1:9/p", "l", "p", deadline=0)
    client = LoyaltyClient.from_settings(
        parse(
            {"processing": {**base["processing"], "deadline": 2.5, "max_answer_bytes": 4096}}
        ).processing
    )
    assert (client.deadline, client.max_answer_bytes) == (2.5, 4096)
    client.close()


# ---------------------------------------------------------------------- bounded answers


@pytest.mark.parametrize("fault", ["huge", "endless"])
def test_a_huge_or_endless_answer_is_a_bad_answer(
    fault: str, proxy: FaultProxy, slow_client: LoyaltyClient
) -> None:
    proxy.set_fault(fault)
    took, outcome = timed(lambda: slow_client.balance(CARD), DEADLINE + 10)
    assert isinstance(outcome, errors.BadResponse), outcome
    assert outcome.retryable and "limit" in str(outcome)
    assert took <= DEADLINE + SLACK
    proxy.wait_hangups(1)  # the connection is closed, not drained


def test_goods_import_and_probe_answers_are_capped_too(
    proxy: FaultProxy, slow_client: LoyaltyClient
) -> None:
    proxy.set_fault("endless")
    with pytest.raises(errors.BadResponse, match="limit"):
        slow_client.import_goods([])
    with pytest.raises(errors.BadResponse, match="limit"):
        slow_client.probe()


def test_an_answer_just_under_the_cap_is_read(proxy: FaultProxy, tmp_path: Path) -> None:
    body = b'{"code":"Ok","balance":1' + b" " * 3000 + b"}"
    proxy.set_fault("garbage", body=body, content_type="application/json")
    with LoyaltyClient(
        proxy.url, LOGIN, PASSWORD, lock_file=tmp_path / "l", max_answer_bytes=len(body)
    ) as client:
        assert client.balance(CARD).ok
    with (
        LoyaltyClient(
            proxy.url, LOGIN, PASSWORD, lock_file=tmp_path / "l", max_answer_bytes=len(body) - 1
        ) as client,
        pytest.raises(errors.BadResponse, match="limit"),
    ):
        client.balance(CARD)


# ---------------------------------------------------------------------- no queue of stuck calls


def test_a_call_queued_behind_a_stuck_one_is_answered_offline_unsent(
    proxy: FaultProxy, slow_client: LoyaltyClient, tmp_path: Path
) -> None:
    oc = OfflineClient(slow_client, Journal(tmp_path / "journal.sqlite"))
    try:
        proxy.set_fault("blackhole")
        ident = Identifier(value=CARD)
        first = oc.prepare(Operation.BALANCE, identifier=ident)
        second = oc.prepare(Operation.BALANCE, identifier=ident)
        start = time.monotonic()
        stuck: Future[Any] = Future()
        threading.Thread(target=lambda: stuck.set_result(oc.send(first)), daemon=True).start()
        proxy.wait_event(lambda e: e.fault == "blackhole")  # the first is at processing
        _, answer = timed(lambda: oc.send(second), DEADLINE + 10)
        assert isinstance(answer, LocalResponse) and answer.local == "offline"
        assert time.monotonic() - start <= DEADLINE + SLACK
        assert isinstance(stuck.result(timeout=5), LocalResponse)
        assert oc.state is Connectivity.OFFLINE
        assert len(proxy.events) == 1  # the second was never sent
    finally:
        oc.journal.close()


def test_a_call_cancelled_before_its_turn_is_not_run(tmp_path: Path) -> None:
    """An asyncio caller that went away (its task cancelled) leaves nothing to send."""
    seq = Sequencer(RegisterLock(tmp_path / "lock"))
    busy, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def stuck() -> None:
        busy.set()
        release.wait(10)

    async def scenario() -> None:
        first = seq.submit(stuck)
        assert busy.wait(5)
        task = asyncio.ensure_future(seq.acall(lambda: ran.append("sent")))
        await asyncio.sleep(0)  # let the task submit its call (an event-loop turn, not a wait)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.wrap_future(first)
        assert await seq.acall(lambda: "after") == "after"  # the queue moved past it

    asyncio.run(scenario())
    seq.close()
    assert ran == []


def test_a_call_already_running_is_finished_and_its_answer_awaited(tmp_path: Path) -> None:
    """Once sent, a step finishes (or is journaled): its caller is not told "cancelled"
    while processing may have acted on it."""
    seq = Sequencer(RegisterLock(tmp_path / "lock"))
    running, release = threading.Event(), threading.Event()

    def step() -> str:
        running.set()
        release.wait(10)
        return "answered"

    async def scenario() -> str:
        task = asyncio.ensure_future(seq.acall(step))
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 5)
        task.cancel()
        release.set()
        return await task

    assert asyncio.run(scenario()) == "answered"
    seq.close()


# ---------------------------------------------------------------------- stopping


def test_close_cuts_a_stuck_request_short(proxy: FaultProxy, tmp_path: Path) -> None:
    client = LoyaltyClient(
        proxy.url, LOGIN, PASSWORD, lock_file=tmp_path / "l", read_timeout=60, deadline=60
    )
    proxy.set_fault("blackhole")
    outcome: Future[Any] = Future()

    def send() -> None:
        try:
            outcome.set_result(client.balance(CARD))
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=send, daemon=True).start()
    proxy.wait_event(lambda e: e.fault == "blackhole")
    took, _ = timed(client.close, 10)
    assert took < 1.0
    exc = outcome.exception(timeout=5)
    assert isinstance(exc, errors.ConnectionLost) and exc.offline
    assert "stopping" in str(exc)


# ---------------------------------------------------------------------- the CLI


def _cli_config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "lock"}"\nread_timeout = 5.0\ndeadline = {DEADLINE}\n'
        f'[journal]\npath = "{tmp_path / "j.sqlite"}"\n'
    )
    return cfg


def _balance_cli(cfg: Path, limit: float) -> tuple[int, float, int, str]:
    """(exit code, when it exited (monotonic), peak RSS in kB, stderr) of `posbridge balance`."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "balance", CARD],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    timer = threading.Timer(limit, proc.kill)  # the old code hung here for minutes
    timer.start()
    try:
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    ended = time.monotonic()
    assert ended - start < limit, "killed: no answer"
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ended, usage.ru_maxrss, err


@pytest.mark.parametrize("fault", [*sorted(SLOW), "huge", "endless"])
def test_balance_cli_answers_within_the_deadline(
    fault: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    cfg = _cli_config(tmp_path, proxy.url)
    code, _, healthy_rss, _ = _balance_cli(cfg, 30)
    assert code == 0
    proxy.set_fault(fault, **SLOW.get(fault, {}))
    code, ended, rss, err = _balance_cli(cfg, DEADLINE + 20)
    assert code == 3, err
    # the cashier's wait: from the request reaching processing to the answer on screen
    # (the command's own start-up is not processing's doing)
    took = ended - proxy.wait_event(lambda e: e.fault == fault).at
    assert took <= DEADLINE + SLACK, f"{fault}: answered {took:.2f} s after sending"
    assert "Traceback" not in err
    assert ("deadline" in err) if fault in SLOW else ("limit" in err), err
    assert rss - healthy_rss < 20_000, f"{fault}: peak RSS {rss} kB vs {healthy_rss} kB"
