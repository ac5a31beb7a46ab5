"""`posbridge catalog push|status` against the real sandbox: diff, rejections, --full, dry run."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx

from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.protocol import Cheque, ChequeLine
from sandbox.server import SandboxServer
from tests.catalog.conftest import Run, processing_goods
from tests.catalog.helpers import GateServer, barcode, write_catalogue, write_config, write_csv
from tests.conftest import admin
from tests.net import free_port


def test_first_push_sends_everything_then_nothing_then_only_the_changes(
    catalog: Run, gated_cfg: Path, gate: GateServer, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(2500))
    first = catalog("--config", gated_cfg, "catalog", "push", path)
    assert first.rc == 0, first.err
    assert [len(u.goods_ids) for u in gate.gate.uploads] == [1000, 1000, 500]
    assert not any(u.replace for u in gate.gate.uploads)
    assert "2,500 accepted, 0 rejected" in first.out

    # what processing stored is what the file says (read back with the csv module)
    stored = processing_goods(sandbox_server)
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            cents = int(Decimal(r["price"]) * 100)
            assert stored[r["goodsId"]] == (r["barcode"], r["name"], r["group"], cents)

    second = catalog("--config", gated_cfg, "catalog", "push", path)
    assert second.rc == 0, second.err
    assert len(gate.gate.uploads) == 3  # nothing sent
    assert "0 new, 0 changed, 2,500 unchanged" in second.out

    write_catalogue(path, range(2500), names={7: "Milk 3.2%", 1500: "Kefir", 2499: "Rye bread"})
    third = catalog("--config", gated_cfg, "catalog", "push", path)
    assert third.rc == 0, third.err
    assert len(gate.gate.uploads) == 4
    assert sorted(gate.gate.uploads[-1].goods_ids) == ["G1500", "G2499", "G7"]
    assert "0 new, 3 changed" in third.out
    stored = processing_goods(sandbox_server)
    assert stored["G7"][1] == "Milk 3.2%" and stored["G1500"][1] == "Kefir"


def test_state_file_is_private_and_next_to_the_journal(
    catalog: Run, cfg: Path, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    assert state_path.is_file()
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    rows = sqlite3.connect(state_path).execute("SELECT goods_id FROM pushed ORDER BY 1").fetchall()
    assert rows == [("G0",), ("G1",), ("G2",)]


def test_rejected_items_are_reported_not_recorded_and_sent_again(
    catalog: Run, gated_cfg: Path, gate: GateServer, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(10))
    # processing applies a check we did not expect: the sandbox really rejects this item
    gate.gate.policy = lambda n: "corrupt:G5" if n == 1 else "forward"
    first = catalog("--config", gated_cfg, "catalog", "push", path)
    assert first.rc == 1
    assert "9 accepted, 1 rejected" in first.out
    assert "rejected G5 (row 6): goods[5]: barcode" in first.out
    assert "not a valid EAN" in first.out  # processing's own reason, passed through
    assert "G5" not in processing_goods(sandbox_server)

    status = catalog("--config", gated_cfg, "catalog", "status", "--json")
    data = json.loads(status.out)
    assert data["itemsKnown"] == 9 and data["rejectedLastTime"] == 1
    assert data["rejections"][0]["goodsId"] == "G5"

    second = catalog("--config", gated_cfg, "catalog", "push", path)
    assert second.rc == 0, second.out
    assert gate.gate.uploads[-1].goods_ids == ["G5"]
    assert processing_goods(sandbox_server)["G5"][0] == barcode(5)
    data = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert data["itemsKnown"] == 10 and data["rejectedLastTime"] == 0


def test_full_replaces_the_catalogue_with_replace_on_the_first_chunk_only(
    catalog: Run, gated_cfg: Path, gate: GateServer, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    assert "1001" in processing_goods(sandbox_server)  # the sandbox's seed goods
    old = write_catalogue(tmp_path / "old.csv", range(1500))
    assert catalog("--config", gated_cfg, "catalog", "push", old).rc == 0
    new = write_catalogue(tmp_path / "new.csv", range(1000, 3500))
    full = catalog("--config", gated_cfg, "catalog", "push", new, "--full")
    assert full.rc == 0, full.err
    uploads = gate.gate.uploads[2:]
    assert [u.replace for u in uploads] == [True, False, False]
    assert sum(len(u.goods_ids) for u in uploads) == 2500  # unchanged items are sent too
    assert (
        "1,000 item(s) pushed before are no longer in the file (this full push removes them)"
        in full.out
    )
    assert set(processing_goods(sandbox_server)) == {f"G{n}" for n in range(1000, 3500)}

    again = catalog("--config", gated_cfg, "catalog", "push", new)
    assert again.rc == 0 and len(gate.gate.uploads) == 5
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["itemsKnown"] == 2500 and status["lastFullPush"] is not None


def test_items_deleted_from_the_file_are_reported_and_kept_by_processing(
    catalog: Run, cfg: Path, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(10))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    write_catalogue(path, [0, 1, 2, 4, 5, 6, 8])
    result = catalog("--config", cfg, "catalog", "push", path)
    assert result.rc == 0
    assert (
        "3 item(s) pushed before are no longer in the file (processing keeps them"
        " (the contract has no delete); `--full` removes them): G3, G7, G9"
    ) in result.out
    assert {"G3", "G7", "G9"} <= set(processing_goods(sandbox_server))
    status = catalog("--config", cfg, "catalog", "status", path)
    assert "3 item(s) pushed before are no longer in the file" in status.out


def test_dry_run_shows_what_would_be_sent_and_changes_nothing(
    catalog: Run, gated_cfg: Path, gate: GateServer, state_path: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3))
    dry = catalog("--config", gated_cfg, "catalog", "push", path, "--dry-run")
    assert dry.rc == 0
    assert "+ G0  Item 0  price 0.00" in dry.out and "dry run: nothing was sent" in dry.out
    assert not state_path.exists() and gate.gate.uploads == []

    assert catalog("--config", gated_cfg, "catalog", "push", path).rc == 0
    before = state_path.read_bytes()
    write_catalogue(path, range(4), names={1: "Renamed"})
    dry = catalog("--config", gated_cfg, "catalog", "push", path, "--dry-run", "--json")
    data = json.loads(dry.out)
    assert data["dryRun"] is True and data["toSend"] == 2
    assert [(i["kind"], i["goodsId"], i["name"]) for i in data["items"]] == [
        ("changed", "G1", "Renamed"),
        ("new", "G3", "Item 3"),
    ]
    assert state_path.read_bytes() == before and len(gate.gate.uploads) == 1


def test_invalid_rows_stop_the_push_unless_skipped(
    catalog: Run, gated_cfg: Path, gate: GateServer, state_path: Path, tmp_path: Path
) -> None:
    good = ["1", barcode(1), "Milk", "dairy", "89.90"]
    path = write_csv(
        tmp_path / "goods.csv",
        [good, ["2", "4600000000016", "Bread", "", "abc"], ["3", "", "", "", "1"]],
    )
    result = catalog("--config", gated_cfg, "catalog", "push", path)
    assert result.rc == 2
    assert (
        "row 2 (line 3): barcode '4600000000016': bad EAN check digit 6, expected 5" in result.err
    )
    assert "row 2 (line 3): price 'abc': expected an amount such as 89.90" in result.err
    assert "row 3 (line 4): name: missing; every item needs one" in result.err
    assert "2 invalid row(s) (3 problem(s)); nothing was sent" in result.err
    assert gate.gate.uploads == []
    assert sqlite3.connect(state_path).execute("SELECT count(*) FROM pushed").fetchone() == (0,)

    skipped = catalog("--config", gated_cfg, "catalog", "push", path, "--skip-invalid")
    assert skipped.rc == 1
    assert [u.goods_ids for u in gate.gate.uploads] == [["1"]]


def test_unknown_goods_are_counted_by_processing_until_pushed(
    catalog: Run, cfg: Path, client: LoyaltyClient, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    def calculate(*goods: str) -> None:
        lines = [
            ChequeLine(
                position=i + 1,
                goods_id=g,
                name=g,
                price=Decimal("10.00"),
                quantity=Decimal(1),
                amount=Decimal("10.00"),
            )
            for i, g in enumerate(goods)
        ]
        cheque = Cheque(number="1", date=datetime(2026, 11, 29, 12, 0), lines=lines)
        client.purchase(cheque).calculate()

    calculate("G1", "G2")
    status = admin(sandbox_server, "status")
    assert status["unknownGoods"] == 2 and status["unknownGoodsIds"] == ["G1", "G2"]
    httpx.post(
        sandbox_server.url.replace("/publicapi", "/sandbox/reset-counters")
    ).raise_for_status()

    path = write_catalogue(tmp_path / "goods.csv", range(5))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    calculate("G1", "G2", "X9")
    status = admin(sandbox_server, "status")
    assert status["unknownGoods"] == 1 and status["unknownGoodsIds"] == ["X9"]
    assert sandbox_server.inventory()["goods"] >= 5


def test_unreachable_processing_exits_3_and_records_nothing(
    catalog: Run, state_path: Path, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path / "dead.toml", f"http://127.0.0.1:{free_port()}/publicapi", tmp_path
    )
    path = write_catalogue(tmp_path / "goods.csv", range(3))
    result = catalog("--config", cfg, "catalog", "push", path)
    assert result.rc == 3
    assert "cannot connect" in result.err and "Run the same command again" in result.err
    assert sqlite3.connect(state_path).execute("SELECT count(*) FROM pushed").fetchone() == (0,)


def test_wrong_password_is_a_config_error(
    catalog: Run, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "c.toml", sandbox_server.url, tmp_path)
    cfg.write_text(cfg.read_text().replace('password = "', 'password = "wrong'))
    result = catalog("--config", cfg, "catalog", "push", write_catalogue(tmp_path / "g.csv", [1]))
    assert result.rc == 2 and "login/password" in result.err


def test_status_before_and_after_a_push(catalog: Run, cfg: Path, tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(4))
    before = catalog("--config", cfg, "catalog", "status", path)
    assert before.rc == 0
    assert "last push completed  never" in before.out and "(no push yet)" in before.out
    assert "4 new, 0 changed, 0 unchanged" in before.out
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    write_catalogue(path, range(5))
    data = json.loads(catalog("--config", cfg, "catalog", "status", path, "--json").out)
    assert data["itemsKnown"] == 4 and data["lastPushCompleted"] is not None
    assert data["incomplete"] is False
    assert data["pending"]["new"] == 1 and data["pending"]["unchanged"] == 4


def test_another_processing_in_the_config_means_everything_is_new(
    catalog: Run, cfg: Path, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(3))
    assert catalog("--config", cfg, "catalog", "push", path).rc == 0
    with SandboxServer(tmp_path / "other.db") as other:
        other_cfg = write_config(tmp_path / "other.toml", other.url, tmp_path)
        status = catalog("--config", other_cfg, "catalog", "status")
        assert "(NOT the configured one)" in status.out
        bad = write_csv(tmp_path / "bad.csv", [["1", "", "", "", ""]])
        assert catalog("--config", other_cfg, "catalog", "push", bad).rc == 2
        kept = json.loads(catalog("--config", cfg, "catalog", "status", "--json").out)
        assert kept["itemsKnown"] == 3  # a run that sent nothing did not drop the record
        fewer = write_catalogue(tmp_path / "fewer.csv", [1, 2])
        result = catalog("--config", other_cfg, "catalog", "push", fewer)
        assert result.rc == 0
        assert "every item is treated as new" in result.err
        assert "2 new, 0 changed" in result.out
        assert "no longer in the file" not in result.out  # G0 was pushed elsewhere, not here
        assert {"G1", "G2"} <= set(processing_goods(other))


def test_missing_file_and_bad_format_are_usage_errors(
    catalog: Run, cfg: Path, tmp_path: Path
) -> None:
    missing = catalog("--config", cfg, "catalog", "push", tmp_path / "nope.csv")
    assert missing.rc == 2 and "no such file" in missing.err
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,title\n1,Milk\n")
    result = catalog("--config", cfg, "catalog", "push", bad)
    assert result.rc == 2 and "unknown column 'sku'" in result.err
    empty = tmp_path / "empty.csv"
    empty.write_text("goodsId,name\n")
    full = catalog("--config", cfg, "catalog", "push", empty, "--full")
    assert full.rc == 2 and "--full would empty processing's catalogue" in full.err
    assert os.path.exists(cfg)


def test_a_blocked_register_is_refused_and_nothing_recorded(
    catalog: Run, sandbox_server: SandboxServer, state_path: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "c.toml", sandbox_server.url, tmp_path)
    text = cfg.read_text().replace('login = "register-1"', 'login = "register-blocked"')
    cfg.write_text(text.replace('password = "secret-1"', 'password = "secret-3"'))
    result = catalog("--config", cfg, "catalog", "push", write_catalogue(tmp_path / "g.csv", [1]))
    assert result.rc == 1
    assert "processing refused the upload: DeviceBlocked: register register-blocked is blocked" in (
        result.err
    )
    assert sqlite3.connect(state_path).execute("SELECT count(*) FROM pushed").fetchone() == (0,)
    status = json.loads(catalog("--config", cfg, "catalog", "status", "--json").out)
    assert status["incomplete"] is True and status["lastPushCompleted"] is None


def test_rejections_of_items_gone_from_the_file_are_forgotten(
    catalog: Run, gated_cfg: Path, gate: GateServer, tmp_path: Path
) -> None:
    path = write_catalogue(tmp_path / "goods.csv", range(5))
    gate.gate.policy = lambda n: "corrupt:G2" if n == 1 else "forward"
    assert catalog("--config", gated_cfg, "catalog", "push", path).rc == 1
    write_catalogue(path, [0, 1, 3, 4])
    result = catalog("--config", gated_cfg, "catalog", "push", path)
    assert result.rc == 0 and "nothing to send" in result.out
    status = json.loads(catalog("--config", gated_cfg, "catalog", "status", "--json").out)
    assert status["rejectedLastTime"] == 0 and status["itemsKnown"] == 4
