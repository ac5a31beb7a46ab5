"""What `posbridge doctor` says of the pass-through: the POS's ports and unmatched items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.config import parse
from bridge.passthrough.checks import passthrough_checks
from drivers.virtual_port import PtyPort

PROCESSING = {"url": "https://processing.example/publicapi", "login": "a", "password": "b"}


def cfg(tmp_path: Path, **registrar: Any) -> Any:
    return parse(
        {
            "processing": PROCESSING,
            "journal": {"path": str(tmp_path / "journal.sqlite")},
            "devices": [
                {"name": "kkt", "kind": "registrar", "connection": "tcp", "host": "192.0.2.20"}
            ],
            "passthrough": [
                {
                    "name": "kkt",
                    "kind": "registrar",
                    "device": "kkt",
                    "link": str(tmp_path / "kkt"),
                    **registrar,
                }
            ],
        }
    )


def checks(config: Any) -> dict[str, tuple[str, str, str | None]]:
    return {
        name: (verdict, detail, fix) for name, verdict, detail, fix in passthrough_checks(config)
    }


def test_the_port_while_the_service_runs_and_when_it_does_not(tmp_path: Path) -> None:
    config = cfg(tmp_path, catalog=str(tmp_path / "catalog.csv"))
    verdict, detail, fix = checks(config)["pass-through kkt"]
    assert verdict == "warn" and "does not exist" in detail and fix and "systemctl" in fix
    port = PtyPort(tmp_path / "kkt", "kkt")
    try:
        verdict, detail, _ = checks(config)["pass-through kkt"]
        assert verdict == "pass" and port.slave_path in detail
    finally:
        port.close()
    (tmp_path / "kkt").write_text("squatter")
    verdict, detail, fix = checks(config)["pass-through kkt"]
    assert verdict == "fail" and "not a symlink" in detail and fix and "remove" in fix


def test_unmatched_items_are_named_with_the_fix(tmp_path: Path) -> None:
    config = cfg(tmp_path, catalog=str(tmp_path / "catalog.csv"))
    assert checks(config)["pass-through items"][0] == "pass"  # nothing settled yet
    stats = {"items": 10, "unmatched": 3, "lastUnmatched": ["Kvass 1 l", "Rye bread", "Sprats"]}
    (tmp_path / "passthrough-stats.json").write_text(json.dumps(stats))
    verdict, detail, fix = checks(config)["pass-through items"]
    assert verdict == "warn" and "3 of 10 item(s)" in detail and "'Sprats'" in detail
    assert fix is not None and "catalog push" in fix
    (tmp_path / "passthrough-stats.json").write_text(json.dumps({"items": 4, "unmatched": 0}))
    assert checks(config)["pass-through items"][0] == "pass"


def test_no_catalogue_means_nothing_can_match(tmp_path: Path) -> None:
    verdict, detail, fix = checks(cfg(tmp_path))["pass-through items"]
    assert verdict == "warn" and "unmatched" in detail and fix and "catalog" in fix
