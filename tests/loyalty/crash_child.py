"""A register process to SIGKILL at random points, and the remote control that kills it.

The child side is a fork server ("zygote"): it is started once with `sys.executable`,
imports the bridge, then forks one worker per command.  Each worker is a fresh process
with its own SQLite connection, HTTP connection and locks, exactly like a restarted
register service, but it starts in milliseconds instead of the second an interpreter
needs on a loaded 2-core machine, so a test can afford dozens of kills and a benchmark
hundreds.  A dead worker stays a zombie until the parent asks the zygote to reap it, so
its pid cannot be reused before the parent's SIGKILL lands.

Workers:
- `sell`: sells the shift's purchases through an `OfflineClient` (processing is down, so
  every must-reach step goes to the journal).  Ids and dates are derived from the seed
  and the purchase index, so selling purchase i again after a kill appends nothing twice
  (the journal ignores an operationId it holds); purchases whose last step is in the
  journal are skipped.  Prints `sold I` after purchase I's last step is durable.
- `drain`: replays the journal; prints `done SEQ` after each entry is marked.

Run `python -m tests.loyalty.crash_child CONFIG_JSON` (the parent, `Zygote`, does this).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import REQUEST_MODELS, Identifier, Operation, ProcessingResponse
from bridge.loyalty.purchase import Purchase
from bridge.loyalty.request import PreparedRequest
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.loyalty.offline_helpers import shift, wait_until

ROOT = Path(__file__).resolve().parents[2]
_NS = uuid.UUID("5d0c6f0e-6a57-4c43-9a77-2f0c0e1b7a11")


# ---------------------------------------------------------------------- deterministic purchases


def purchase_id(seed: int, index: int) -> str:
    return str(uuid.uuid5(_NS, f"{seed}/{index}"))


def operation_id(seed: int, index: int, op: Operation) -> str:
    return str(uuid.uuid5(_NS, f"{seed}/{index}/{op.value}"))


class FixedIds:
    """A `Sender` whose steps get ids from (seed, purchase index, operation) and the shift's time.

    The same purchase sold twice (after a kill) produces the very same requests, which is
    what a register that records its progress would send again.
    """

    def __init__(
        self, inner: OfflineClient | LoyaltyClient, seed: int, index: int, when: datetime
    ) -> None:
        self.inner, self.seed, self.index, self.when = inner, seed, index, when

    def send(self, request: PreparedRequest) -> ProcessingResponse:
        return self.inner.send(request)

    def prepare(
        self,
        op: Operation,
        *,
        purchase_id: str | None = None,
        target_operation_id: str | None = None,
        identifier: Identifier | None = None,
        **fields: object,
    ) -> PreparedRequest:
        body = REQUEST_MODELS[op](
            operation_id=operation_id(self.seed, self.index, op),
            operation_date=self.when,
            identifier=identifier,
            **fields,
        )
        return PreparedRequest(op, body, purchase_id, target_operation_id)


def sell_one(sender: OfflineClient | LoyaltyClient, seed: int, index: int, item: Any) -> Purchase:
    """Purchase `index` of the shift: calculate, discount, then confirm or cancel."""
    cheque, ident, when, cancel = item
    p = Purchase(
        FixedIds(sender, seed, index, when), cheque, ident, purchase_id=purchase_id(seed, index)
    )
    p.calculate()
    p.discount()
    if cancel:
        p.cancel()
    else:
        p.confirm()
    return p


def final_op(item: Any) -> Operation:
    return Operation.CANCEL if item[3] else Operation.CONFIRM


def expected_operation_ids(seed: int, n: int) -> list[str]:
    """The journal's operationIds in the order the shift must leave them."""
    out = []
    for i, item in enumerate(shift(seed, n)):
        out += [operation_id(seed, i, Operation.DISCOUNT), operation_id(seed, i, final_op(item))]
    return out


# ---------------------------------------------------------------------- child side


def _say(text: str) -> None:
    os.write(1, (text + "\n").encode())  # one write per line: lines of zygote and worker never mix


_client: LoyaltyClient | None = None


def _offline_client(cfg: dict[str, Any]) -> OfflineClient:
    assert _client is not None
    return OfflineClient(_client, Journal(cfg["journal"]))


def _work_sell(cfg: dict[str, Any]) -> int:
    oc = _offline_client(cfg)
    seed = cfg["seed"]
    _say("ready")
    for i, item in enumerate(shift(seed, cfg["n"])):
        if oc.journal.by_operation_id(operation_id(seed, i, final_op(item))) is not None:
            continue
        sell_one(oc, seed, i, item)
        _say(f"sold {i}")
    _say("finished")
    return 0


def _work_drain(cfg: dict[str, Any]) -> int:
    oc = _offline_client(cfg)
    _say("ready")
    for _ in range(
        20
    ):  # a stop is retried: processing may still be busy with a dead worker's request
        report = oc.drain(progress=lambda entry, outcome: _say(f"{outcome} {entry.seq}"))
        if report.stopped is None:
            _say("finished")
            return 0
        _say(f"stopped {report.stopped}")
    _say("finished")
    return 3


def _worker(task: str, cfg: dict[str, Any]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return {"sell": _work_sell, "drain": _work_drain}[task](cfg)
    except BaseException as exc:
        _say(f"crashed {type(exc).__name__}: {exc}")
        return 4


def zygote(cfg: dict[str, Any]) -> None:
    """Read `TASK` / `reap PID` / `quit` lines on stdin; fork a worker per task.

    The LoyaltyClient is built here, before any fork: building it costs a TLS context
    (a tenth of a second), and until its first request it holds no socket, file or
    thread, so each worker's copy is as fresh as one built after a restart.
    """
    global _client
    _client = LoyaltyClient(
        cfg["url"],
        LOGIN,
        PASSWORD,
        lock_file=Path(cfg["lock_file"]),
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    _say("zygote ready")
    for raw in sys.stdin:
        words = raw.split()
        if not words:
            continue
        if words[0] == "quit":
            return
        if words[0] == "reap":
            pid = int(words[1])
            _, status = os.waitpid(pid, 0)
            _say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 4
            try:
                code = _worker(words[0], cfg)
            finally:
                sys.stderr.flush()
                os._exit(code)
        _say(f"pid {pid}")


# ---------------------------------------------------------------------- parent side


class ChildError(AssertionError):
    """The child did not answer as expected (its stderr log is named in the message)."""


@dataclass
class Line:
    word: str
    arg: str


class Zygote:
    """The parent's handle on the fork server: start workers, read their lines, kill, reap."""

    def __init__(self, cfg: dict[str, Any], log: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.log = log
        self._log_file: IO[bytes] = open(log, "wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.loyalty.crash_child", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            cwd=ROOT,
            env=env,
        )
        self._buf = b""
        self._early: deque[Line] = deque()
        self._live: set[int] = set()  # workers started and not reaped
        self.expect("zygote")

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def line(self) -> Line:
        """The next line from the zygote or its worker (waits on the pipe with a deadline)."""
        return self._early.popleft() if self._early else self._next()

    def _next(self) -> Line:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                raise ChildError(f"no line from the child in {self.timeout} s (log {self.log})")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ChildError(f"the child closed its output (log {self.log})")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\n")
        word, _, arg = raw.decode().partition(" ")
        if word == "crashed":
            raise ChildError(f"worker crashed: {arg} (log {self.log})")
        return Line(word, arg)

    def expect(self, word: str) -> Line:
        got = self.line()
        if got.word != word:
            raise ChildError(f"expected {word!r} from the child, got {got} (log {self.log})")
        return got

    def start(self, task: str) -> int:
        """Fork a worker; its first lines may come before the zygote's `pid` line."""
        self._send(task)
        early = []
        while (got := self._next()).word != "pid":
            early.append(got)
        self._early.extend(early)
        self._live.add(int(got.arg))
        return int(got.arg)

    def reap(self, pid: int, seen: list[Line]) -> int:
        """Collect the worker's exit code; its remaining lines are appended to `seen`."""
        self._send(f"reap {pid}")
        while True:
            got = self.line()
            if got.word == "exit":
                who, _, code = got.arg.partition(" ")
                assert int(who) == pid
                self._live.discard(pid)
                return int(code)
            seen.append(got)

    def close(self) -> None:
        """Kill a worker a failed test left running, then stop the zygote."""
        if self.proc.poll() is None:
            for pid in list(self._live):
                os.kill(pid, signal.SIGKILL)  # unreaped, so the pid is still ours
                try:
                    self.reap(pid, [])
                except ChildError:
                    break
            self._send("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._log_file.close()


# ---------------------------------------------------------------------- the campaign


@dataclass
class Outcome:
    purchases: int
    entries: int
    sell_kills: int = 0
    drain_kills: int = 0
    resends_expected: int = 0  # workers that started on an entry processing had applied
    truncated: int = 0  # requests cut by a kill mid-write (processing answered 400)
    duplicates: int = 0
    overlaps: int = 0
    seconds: float = 0.0

    @property
    def kills(self) -> int:
        return self.sell_kills + self.drain_kills


def server_connections(port: int) -> int:
    """Open server-side TCP connections on `port`, as the kernel lists them.

    A connection of a killed worker stays listed until the sandbox's handler has finished
    whatever request it had read and closed its end.  LISTEN and TIME_WAIT do not count.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state not in ("0A", "06"):
                count += 1
    return count


def wait_idle(server: SandboxServer) -> None:
    """Processing has finished every request a killed worker left behind."""
    wait_until(
        lambda: server_connections(server.port) == 0 and not server.in_flight.busy(LOGIN),
        30,
        "the sandbox to finish the killed worker's requests",
    )


def applied(server: SandboxServer, op: str, pid: str | None) -> bool:
    """Has processing already applied this step? (its own view of the purchase)"""
    view = server.purchase(pid) if pid else None
    if view is None:
        return False
    status = str(view["status"])
    return {
        "discount": status != "open",
        "confirm": status == "confirmed",
        "cancel": status == "canceled",
    }[op]


def journal_ids(path: Path) -> list[tuple[str, str]]:
    journal = Journal(path)
    try:
        return [(e.operation_id, e.status) for e in journal.entries()]
    finally:
        journal.close()


def _read_until(z: Zygote, word: str, count: int, seen: list[Line]) -> None:
    """Read lines until `count` lines of `word`, or the worker finished."""
    got = 0
    while got < count:
        line = z.line()
        seen.append(line)
        if line.word == "finished":
            return
        got += line.word == word


def _kill(z: Zygote, pid: int, rng: random.Random, jitter: float, seen: list[Line]) -> bool:
    time.sleep(rng.uniform(0, jitter))  # chooses the kill point; nothing waits on it
    os.kill(pid, signal.SIGKILL)
    code = z.reap(pid, seen)
    assert code in (0, -signal.SIGKILL), f"worker ended with {code}"
    return code == -signal.SIGKILL


def crash_campaign(
    server: SandboxServer,
    tmp: Path,
    *,
    seed: int,
    n: int,
    sell_kills: int,
    drain_kills: int,
    rng: random.Random,
    jitter: float = 0.005,
) -> Outcome:
    """Sell n purchases offline, then replay them, SIGKILLing the register all along.

    Raises AssertionError as soon as an invariant breaks: a purchase reported sold that
    the journal lacks, a journal out of order or holding a step twice, a refusal.
    """
    started = time.monotonic()
    expected = expected_operation_ids(seed, n)
    out = Outcome(purchases=n, entries=len(expected))
    path = tmp / "journal.sqlite"
    cfg = {
        "url": server.url,
        "lock_file": str(tmp / "processing.lock"),
        "journal": str(path),
        "seed": seed,
        "n": n,
    }
    z = Zygote(cfg, tmp / "child.log")
    try:
        server.stop()
        sold: set[int] = set()
        attempts, left = 0, n
        while out.sell_kills < sell_kills and left > 0 and attempts < 4 * sell_kills:
            attempts += 1
            seen: list[Line] = []
            pid = z.start("sell")
            z.expect("ready")
            _read_until(
                z, "sold", rng.randint(0, max(1, left // (sell_kills - out.sell_kills + 1))), seen
            )
            out.sell_kills += _kill(z, pid, rng, jitter, seen)
            sold |= {int(line.arg) for line in seen if line.word == "sold"}
            ids = [oid for oid, _ in journal_ids(path)]
            assert ids == expected[: len(ids)], "journal out of order or holding a step twice"
            lost = [i for i in sold if expected[2 * i + 1] not in ids]
            assert not lost, f"purchases {sorted(lost)} were reported sold but are not journaled"
            left = n - len(ids) // 2
        seen = []
        pid = z.start("sell")
        _read_until(z, "sold", n + 1, seen)
        assert z.reap(pid, seen) == 0
        assert journal_ids(path) == [(oid, "pending") for oid in expected]

        server.start()
        while True:
            journal = Journal(path)
            first = journal.next_pending()
            left = journal.counts().pending
            journal.close()
            if first is None:
                break
            was_applied = applied(server, first.op, first.purchase_id)
            before = server.status()
            seen = []
            pid = z.start("drain")
            if out.drain_kills < drain_kills:
                z.expect("ready")
                target = rng.randint(0, max(1, left // (drain_kills - out.drain_kills + 1)))
                _read_until(z, "done", target, seen)
                out.drain_kills += _kill(z, pid, rng, jitter, seen)
            else:  # enough kills: let this one finish
                _read_until(z, "done", left + 1, seen)
                assert z.reap(pid, seen) == 0, f"the last drain failed: {seen[-3:]}"
            wait_idle(server)
            after = server.status()
            truncated = after["byStatus"].get("400", 0) - before["byStatus"].get("400", 0)
            out.truncated += truncated
            if was_applied and after["requests"] - before["requests"] > truncated:
                out.resends_expected += 1  # this worker's first request was `first` again
        assert journal_ids(path) == [(oid, "done") for oid in expected]
        status = server.status()
        out.duplicates, out.overlaps = status["duplicates"], status["overlaps"]
        assert set(status["byStatus"]) <= {"200", "400"}, status["byStatus"]
        assert set(status["byCode"]) <= {"Ok", "SystemError"}, status["byCode"]
    finally:
        z.close()
    out.seconds = time.monotonic() - started
    return out


def online_reference(tmp: Path, seed: int, n: int) -> dict[str, Any]:
    """The same shift sold online against a fresh sandbox: what processing must end up with."""
    with SandboxServer(tmp / "online.db") as server:
        client = LoyaltyClient(server.url, LOGIN, PASSWORD, lock_file=tmp / "online.lock")
        try:
            for i, item in enumerate(shift(seed, n)):
                sell_one(client, seed, i, item)
        finally:
            client.close()
        assert server.status()["duplicates"] == 0
        return final_state(server, seed, n)


CARDS = ("2775000000012", "2775000000029", "2775000000050", "2775000000067")


def final_state(server: SandboxServer, seed: int, n: int) -> dict[str, Any]:
    """Every card's ledger totals and every purchase as processing sees them."""
    state: dict[str, Any] = {}
    for card in CARDS:
        book = server.ledger(card)
        assert book is not None
        state[card] = {k: v for k, v in book.items() if k != "entries"}
    for i in range(n):
        state[purchase_id(seed, i)] = server.purchase(purchase_id(seed, i))
    return state


if __name__ == "__main__":
    zygote(json.loads(sys.argv[1]))
