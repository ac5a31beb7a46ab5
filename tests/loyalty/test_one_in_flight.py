"""Rule 1 of the contract: one request in flight per register, ever.

The sandbox counts overlapping requests of one register (and answers them
PurchaseOperationConflict, as processing does under parallel load).  An artificial
processing time widens every request so that any overlap would be seen; the raw
parallel run proves the counter itself works.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.errors import PurchaseOperationConflict
from bridge.loyalty.protocol import BalanceRequest, Identifier, Operation, encode, local_now
from bridge.loyalty.sequencer import RegisterLock, Sequencer
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD, admin

CARD = "2775000000012"
LATENCY = 0.01


def test_counter_sees_raw_parallel_requests(sandbox_server: SandboxServer) -> None:
    sandbox_server.set_latency(LATENCY * 5)
    body = encode(
        BalanceRequest(
            operation_id="x", operation_date=local_now(), identifier=Identifier(value=CARD)
        )
    )

    def fire(i: int) -> int:
        with httpx.Client(auth=(LOGIN, PASSWORD), timeout=10) as raw:
            payload = body.replace(b'"x"', f'"raw-{i}"'.encode())
            return raw.post(
                f"{sandbox_server.url}/v1.2/Processing/Balance", content=payload
            ).status_code

    barrier = threading.Barrier(20)

    def fire_together(i: int) -> int:
        barrier.wait()
        return fire(i)

    with ThreadPoolExecutor(20) as pool:
        assert all(code == 200 for code in pool.map(fire_together, range(20)))
    assert admin(sandbox_server, "status")["overlaps"] > 0


def test_fifty_threads_never_overlap(client: LoyaltyClient, sandbox_server: SandboxServer) -> None:
    sandbox_server.set_latency(LATENCY)
    barrier = threading.Barrier(50)

    def call(_: int) -> object:
        barrier.wait()
        return client.balance(CARD).balance

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    status = admin(sandbox_server, "status")
    assert status["overlaps"] == 0
    assert status["requests"] == 50 and len(results) == 50


def test_fifty_asyncio_tasks_never_overlap(
    client: LoyaltyClient, sandbox_server: SandboxServer
) -> None:
    sandbox_server.set_latency(LATENCY)

    async def main() -> list[object]:
        reqs = [
            client.prepare(Operation.BALANCE, identifier=Identifier(value=CARD)) for _ in range(50)
        ]
        return await asyncio.gather(*(client.asend(r) for r in reqs))

    results = asyncio.run(main())
    assert len(results) == 50
    status = admin(sandbox_server, "status")
    assert status["overlaps"] == 0 and status["requests"] == 50


def two_clients_race(a: LoyaltyClient, b: LoyaltyClient) -> None:
    barrier = threading.Barrier(40)

    def call(i: int) -> object:
        barrier.wait()
        try:
            return (a if i % 2 else b).balance(CARD)
        except PurchaseOperationConflict as exc:
            return exc

    with ThreadPoolExecutor(40) as pool:
        list(pool.map(call, range(40)))


def test_two_clients_sharing_the_register_lock_never_overlap(
    make_client: Callable[..., LoyaltyClient], sandbox_server: SandboxServer
) -> None:
    """Two client objects = two sequencers; only the register lock keeps them apart."""
    sandbox_server.set_latency(LATENCY)
    two_clients_race(make_client(), make_client())
    assert admin(sandbox_server, "status")["overlaps"] == 0


def test_without_the_register_lock_two_clients_do_overlap(
    make_client: Callable[..., LoyaltyClient], sandbox_server: SandboxServer
) -> None:
    """The control experiment: the lock file, not luck, is what keeps processes apart."""
    sandbox_server.set_latency(LATENCY * 3)
    two_clients_race(make_client(lock_file=None), make_client(lock_file=None))
    assert admin(sandbox_server, "status")["overlaps"] > 0


def test_processes_of_one_register_take_turns(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    """A technician's `posbridge balance` while the service runs waits its turn."""
    sandbox_server.set_latency(LATENCY)
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "processing.lock"}"\n'
    )
    script = (
        "import sys\n"
        "from bridge.cli import main\n"
        "codes = [main(['--config', sys.argv[1], 'balance', sys.argv[2]]) for _ in range(5)]\n"
        "raise SystemExit(max(codes))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(cfg), CARD],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    # the "service": this process keeps calling at the same time
    client = LoyaltyClient(
        sandbox_server.url, LOGIN, PASSWORD, lock_file=tmp_path / "processing.lock"
    )
    with client:
        for _ in range(10):
            client.balance(CARD)
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"balance 500.00" in out
    status = admin(sandbox_server, "status")
    assert status["requests"] == 6 * 5 + 10
    assert status["overlaps"] == 0


def test_callers_are_served_in_arrival_order(tmp_path: Path) -> None:
    seq = Sequencer(RegisterLock(tmp_path / "lock"))
    gate = threading.Event()
    order: list[int] = []
    first = seq.submit(gate.wait)
    futures = []
    for i in range(30):
        futures.append(seq.submit(lambda i=i: order.append(i)))  # type: ignore[misc]
    gate.set()
    first.result(5)
    for f in futures:
        f.result(5)
    seq.close()
    assert order == list(range(30))


def test_a_failing_call_does_not_stop_the_sender(tmp_path: Path) -> None:
    seq = Sequencer(RegisterLock(tmp_path / "lock"))

    def boom() -> None:
        raise ValueError("boom")

    bad = seq.submit(boom)
    good = seq.submit(lambda: 42)
    assert good.result(5) == 42
    assert isinstance(bad.exception(5), ValueError)
    seq.close()
