"""A damaged journal: found at start, moved aside and kept, a fresh one in use, an alarm
until acknowledged, and every readable pending entry salvaged in order, once.

Damage is real bytes in a real SQLite file, at several offsets.
"""

from __future__ import annotations

import hashlib
import random
import resource
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bridge.cli import main
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import (
    EntryStatus,
    Journal,
    JournalDamaged,
    alarm_path,
    read_alarm,
    salvage,
)
from bridge.loyalty.offline import OfflineClient
from bridge.loyalty.protocol import Identifier, Operation, loads
from bridge.loyalty.purchase import Purchase
from bridge.server import Service
from sandbox.server import SandboxServer
from tests.conftest import admin
from tests.loyalty.offline_helpers import shift
from tests.loyalty.test_offline import ledger_totals
from tests.service.conftest import TOKEN, service_config

PAGE = 4096
ENTRIES = 120
CARD = "2775000000012"


@pytest.fixture
def offline_client(tmp_path: Path) -> Iterator[LoyaltyClient]:
    """Only prepares requests (nothing is sent): no processing needed."""
    client = LoyaltyClient(
        "http://127.0.0.1:9/publicapi",
        "register-1",
        "secret-1",
        lock_file=tmp_path / "processing.lock",
    )
    yield client
    client.close()


def build(path: Path, client: LoyaltyClient) -> list[str]:
    """A journal of ENTRIES steps, every fifth already sent; the pending operationIds."""
    journal = Journal(path)
    pending = []
    for i in range(ENTRIES):
        request = client.prepare(
            Operation.CONFIRM, purchase_id=f"purchase-{i}", identifier=Identifier(value=CARD)
        )
        entry = journal.append(request)
        if i % 5 == 0:
            journal.finish(entry.seq, EntryStatus.DONE, {"code": "Ok"})
        else:
            pending.append(request.operation_id)
    journal.close()
    assert path.stat().st_size > 8 * PAGE  # enough pages for the offsets below
    return pending


def damage(path: Path, kind: str) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(kind)
    pages = len(data) // PAGE
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "random-file":
        data = bytearray(rng.randbytes(len(data)))
    else:
        page = {"page-3": 3, "page-2": 2, "last-page": pages, "middle-page": pages // 2}[kind]
        data[(page - 1) * PAGE : page * PAGE] = rng.randbytes(PAGE)
    assert kind == "random-file" or data[:16] == b"SQLite format 3\0"  # header intact
    path.write_bytes(bytes(data))


def write_config(tmp_path: Path, journal: Path, url: str = "http://127.0.0.1:9/publicapi") -> str:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "register-1"\npassword = "secret-1"\n'
        f'lock_file = "{tmp_path / "processing.lock"}"\n[journal]\npath = "{journal}"\n'
    )
    return str(cfg)


def cli(cfg: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", cfg, "journal", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# what salvage must get back at least, per kind: the rows on a damaged page are lost,
# and so is everything when the page lost is the table's root (page 2) or the file is
# not a database at all
AT_LEAST = {
    "page-3": ENTRIES * 4 // 5,
    "middle-page": 60,
    "last-page": 60,
    "truncated": 10,
    "page-2": 0,
}


@pytest.mark.parametrize(
    "kind", ["page-3", "page-2", "middle-page", "last-page", "truncated", "random-file"]
)
def test_damage_is_found_moved_aside_and_salvaged(
    kind: str, tmp_path: Path, offline_client: LoyaltyClient, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    pending = build(path, offline_client)
    damage(path, kind)
    damaged_bytes = hashlib.sha256(path.read_bytes()).hexdigest()
    cfg = write_config(tmp_path, path)

    code, out, _ = cli(cfg, capsys, "check")
    assert code == 1 and "damaged" in out and len(out.strip().splitlines()) == 1
    with pytest.raises(JournalDamaged):  # inspection never moves it
        Journal(path, repair=False)
    assert not read_alarm(path)

    journal = Journal(path)  # what the service does at start
    try:
        moved = journal.moved_aside
        assert moved is not None and moved.name.startswith("journal.sqlite.damaged-")
        assert hashlib.sha256(moved.read_bytes()).hexdigest() == damaged_bytes  # kept as is
        alarm = read_alarm(path)
        assert alarm is not None and alarm["movedTo"] == str(moved)
        assert stat.S_IMODE(alarm_path(path).stat().st_mode) == 0o600
        assert journal.health()["state"] == "damaged"

        fresh = journal.append(offline_client.prepare(Operation.CONFIRM, purchase_id="after"))
        assert journal.counts().pending == 1
        code, out, _ = cli(cfg, capsys, "check")
        assert code == 0 and out.startswith(f"journal {path}: ok")

        code, out, err = cli(cfg, capsys, "salvage", str(moved))
        if kind == "random-file":
            assert code == 2 and "cannot be read as a journal" in err
            return
        assert code == 0, err
        recovered = [
            e for e in journal.entries(EntryStatus.PENDING) if e.operation_id != fresh.operation_id
        ]
        ids = [e.operation_id for e in recovered]
        assert f"{len(ids)} recovered, 0 already present" in out
        assert len(ids) >= AT_LEAST[kind]
        assert len(set(ids)) == len(ids)  # no duplicates
        positions = [pending.index(i) for i in ids]  # only pending ones, nothing invented
        assert positions == sorted(positions)  # in their original order
        assert all(e.seq < fresh.seq for e in recovered)  # and replayed before newer ones
        if len(ids) < len(pending):
            assert "unreadable" in out

        code, out, _ = cli(cfg, capsys, "salvage", str(moved))
        assert code == 0 and f"0 recovered, {len(ids)} already present" in out
        assert journal.counts().pending == len(ids) + 1
    finally:
        journal.close()

    code, out, _ = cli(cfg, capsys, "acknowledge")
    assert code == 0 and "acknowledged" in out and str(moved) in out
    assert read_alarm(path) is None and moved.exists()  # the damaged file is never deleted


def test_check_names_a_file_that_is_not_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, tmp_path / "journal.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 300)
    code, out, _ = cli(cfg, capsys, "check", str(junk))
    assert code == 1 and "damaged" in out and "salvage" in out


# ---------------------------------------------------------------------- the service


@pytest.fixture
def damaged_service(
    tmp_path: Path, sandbox_server: SandboxServer, offline_client: LoyaltyClient
) -> Iterator[Callable[[], Service]]:
    started: list[Service] = []
    journal = tmp_path / "journal.sqlite"
    build(journal, offline_client)
    damage(journal, "page-3")  # the reproduction: header intact, page 3 random

    def start() -> Service:
        svc = Service(service_config(tmp_path, sandbox_server.url), TOKEN).start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


def test_the_service_starts_on_a_fresh_journal_and_alarms_until_acknowledged(
    damaged_service: Callable[[], Service],
    tmp_path: Path,
    sandbox_server: SandboxServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    svc = damaged_service()
    with httpx.Client(base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30) as api:
        status = loads(api.get("/v1/status").content)
        assert status["health"] == "degraded" and status["journal"]["state"] == "damaged"
        moved = status["journal"]["alarm"]["movedTo"]
        assert Path(moved).exists()
        assert "posbridge_journal_damaged_alarm 1.0" in api.get("/metrics").text

        # the register keeps selling (the old code answered every confirm 500 DatabaseError)
        cid = loads(
            api.post(
                "/v1/cheques",
                json={
                    "card": CARD,
                    "lines": [
                        {"goodsId": "1001", "name": "Milk", "price": "89.90", "quantity": "1"}
                    ],
                },
            ).content
        )["id"]
        assert api.post(f"/v1/cheques/{cid}/calculate").status_code == 200
        start = time.monotonic()
        r = api.post(f"/v1/cheques/{cid}/confirm")
        waited = time.monotonic() - start
        assert r.status_code == 200, r.text
        with capsys.disabled():
            print(
                f"\nFAULT damaged-journal: confirm on the fresh journal {waited * 1000:.0f}"
                f" ms; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
                " MiB (test process)"
            )
        assert loads(r.content)["accrued"] > Decimal(0)

        cfg = write_config(tmp_path, tmp_path / "journal.sqlite", sandbox_server.url)
        assert main(["--config", cfg, "doctor", "--json"]) != 0
        doctor = capsys.readouterr().out
        assert "journal alarm" in doctor and "acknowledge" in doctor

        code, out, _ = cli(cfg, capsys, "acknowledge")
        assert "acknowledged" in out
        assert code == 0
        status = loads(api.get("/v1/status").content)
        assert status["health"] == "ok" and status["journal"]["alarm"] is None
        main(["--config", cfg, "doctor", "--json"])
        assert "journal alarm" not in capsys.readouterr().out


# ---------------------------------------------------------------------- the ledger


def test_offline_shift_in_a_damaged_journal_salvaged_equals_the_shift_sold_online(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    """Damage in an index page (page 3, the reproduction) costs no entry: salvaged and
    replayed, the ledger equals the same shift sold online, 0 lost, 0 doubled."""
    purchases = shift(31, 40)

    def run(server: SandboxServer, name: str) -> OfflineClient:
        clock = {"now": datetime(2026, 1, 1)}
        client = LoyaltyClient(
            server.url,
            "register-1",
            "secret-1",
            lock_file=tmp_path / f"{name}.lock",
            clock=lambda: clock["now"],
        )
        oc = OfflineClient(client, Journal(tmp_path / name / "journal.sqlite"))
        for cheque, ident, when, cancel in purchases:
            clock["now"] = when
            p = Purchase(oc, cheque, ident)
            p.discount()
            if cancel:
                p.cancel()
            else:
                p.confirm()
        return oc

    sandbox_server.stop()
    offline = run(sandbox_server, "offline")
    assert offline.journal.counts().pending == 80
    offline.client.close()
    offline.journal.close()
    path = tmp_path / "offline" / "journal.sqlite"
    damage(path, "page-3")

    sandbox_server.start()
    journal = Journal(path)  # the restart: moved aside, fresh journal
    assert journal.moved_aside is not None and journal.counts().pending == 0
    report = salvage(journal, journal.moved_aside)
    assert (report.recovered, report.unreadable) == (80, 0)
    client = LoyaltyClient(
        sandbox_server.url, "register-1", "secret-1", lock_file=tmp_path / "replay.lock"
    )
    oc = OfflineClient(client, journal)
    drained = oc.drain()
    assert drained.stopped is None and not drained.rejected and drained.done == 80
    client.close()
    journal.close()

    with SandboxServer(tmp_path / "online.db") as online_server:
        online = run(online_server, "online")
        assert online.journal.counts().pending == 0
        assert ledger_totals(sandbox_server) == ledger_totals(online_server)
        online.client.close()
        online.journal.close()
    assert admin(sandbox_server, "status")["duplicates"] == 0


def test_salvage_into_a_journal_whose_numbers_clash_keeps_the_order(
    tmp_path: Path, offline_client: LoyaltyClient
) -> None:
    """Salvaged into a journal that was not started fresh above them: they all go after
    its own entries, still in their original order."""
    damaged = tmp_path / "old.sqlite"
    pending = build(damaged, offline_client)
    damage(damaged, "last-page")
    live = Journal(tmp_path / "live.sqlite")
    try:
        mine = [
            live.append(offline_client.prepare(Operation.CONFIRM, purchase_id=f"live-{i}"))
            for i in range(5)
        ]  # numbers 1-5: some salvaged ones had them too
        report = salvage(live, damaged)
        assert report.recovered >= AT_LEAST["last-page"]
        entries = list(live.entries(EntryStatus.PENDING))
        assert [e.operation_id for e in entries[:5]] == [e.operation_id for e in mine]
        ids = [e.operation_id for e in entries[5:]]
        positions = [pending.index(i) for i in ids]
        assert positions == sorted(positions) and len(ids) == report.recovered
    finally:
        live.close()
