"""`[[passthrough]]` entries: each problem one line naming the entry and the key, all at once."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bridge.config import RUN_DIR, ConfigError, parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "passthrough.md"
PROCESSING = {"url": "https://processing.example/publicapi", "login": "a", "password": "b"}
DEVICES = [
    {"name": "kkt", "kind": "registrar", "connection": "tcp", "host": "192.0.2.20"},
    {"name": "scan", "kind": "scanner", "connection": "serial", "port": "/dev/ttyACM0"},
    {"name": "receipt", "kind": "printer", "connection": "tcp", "host": "192.0.2.30"},
]


def config(passthrough: list[dict[str, Any]], **extra: Any) -> Any:
    return parse(
        {"processing": PROCESSING, "devices": DEVICES, "passthrough": passthrough, **extra}
    )


def problems(passthrough: list[dict[str, Any]], **extra: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(passthrough, **extra)
    return caught.value.problems


def test_defaults_and_addresses() -> None:
    cfg = config(
        [
            {"name": "kkt", "kind": "registrar", "device": "kkt"},
            {"name": "scan", "kind": "scanner", "device": "scan", "listen": "127.0.0.1:7000"},
        ]
    )
    kkt, scan = cfg.passthrough
    assert kkt.link_path() == RUN_DIR / "kkt" == Path("/run/posbridge/kkt")
    assert kkt.listen_address() is None and kkt.settle_budget == 2.0
    assert scan.link_path() is None and scan.listen_address() == ("127.0.0.1", 7000)
    assert config([]).passthrough == []


def test_every_problem_at_once() -> None:
    found = problems(
        [
            {"name": "kkt", "kind": "registrar", "device": "scan", "window": 3},
            {"name": "kkt", "kind": "printer", "device": "nope", "link": "/run/posbridge/kkt"},
            {"name": "x", "kind": "scanner", "device": "scan", "listen": "h:99999"},
            {"name": "y", "kind": "fridge", "device": "kkt"},
        ]
    )
    text = "\n".join(found)
    assert "passthrough[0].window: only a printer pass-through reads it" in text
    assert "passthrough[0].device: 'scan' is a scanner, not a registrar" in text
    assert "passthrough[1].device: 'nope' is not a [[devices]] entry" in text
    assert "passthrough[1].name: 'kkt' is used by passthrough[0] too" in text
    assert "passthrough[1].link: '/run/posbridge/kkt' is used by passthrough[0] too" in text
    assert "passthrough[2].listen: the port of 'h:99999' is not 1..65535" in text
    assert "passthrough[3].kind" in text


def test_one_device_one_relay_and_link_or_listen() -> None:
    found = problems(
        [
            {"name": "a", "kind": "scanner", "device": "scan"},
            {"name": "b", "kind": "scanner", "device": "scan", "link": "/x", "listen": "h:1"},
        ]
    )
    assert "passthrough[1].device: 'scan' is used by passthrough[0] too" in "\n".join(found)
    assert "passthrough[1]: set `link` (a pty) or `listen` (TCP), not both" in found


def test_our_own_printing_may_not_use_a_relayed_device() -> None:
    found = problems(
        [{"name": "p", "kind": "printer", "device": "receipt"}], receipt={"printer": "receipt"}
    )
    assert any(
        p.startswith("receipt.printer: 'receipt' stands behind passthrough[0]") for p in found
    )


def test_the_documented_example_is_accepted() -> None:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    data = tomllib.loads(block.group(1))
    cfg = parse({"processing": PROCESSING, **data})
    assert [p.link_path() for p in cfg.passthrough] == [RUN_DIR / "kkt", RUN_DIR / "scanner"]


def test_no_virtual_port_open_to_everyone() -> None:
    """A virtual port has no authentication: not on the network, not world-writable."""
    found = problems(
        [
            {"name": "a", "kind": "scanner", "device": "scan", "listen": "0.0.0.0:7000"},
            {"name": "b", "kind": "registrar", "device": "kkt", "pty_mode": 0o666},
        ]
    )
    text = "\n".join(found)
    assert "passthrough[0].listen: '0.0.0.0:7000' is not on loopback" in text
    assert "passthrough[1].pty_mode: 0o666 lets every user write" in text
    assert config([{"name": "c", "kind": "scanner", "device": "scan", "listen": "localhost:7000"}])
