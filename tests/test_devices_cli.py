"""`posbridge devices` and `posbridge udev-rules` from the config (no hardware here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bridge.cli import main
from tests.drivers.test_udev_rules import check_rules_file

CONFIG = """
[processing]
url = "http://127.0.0.1:9/x"
login = "a"
password = "b"
[[devices]]
name = "scanner"
kind = "scanner"
connection = "serial"
port = "/dev/ttyACM0"
[[devices]]
name = "receipt"
kind = "printer"
connection = "usb"
usb = "04b8:0e15"
[[devices]]
name = "msr"
kind = "card_reader"
connection = "hid"
port = "/dev/input/by-id/usb-MagTek-event-kbd"
[[devices]]
name = "lan"
kind = "printer"
connection = "tcp"
host = "127.0.0.1"
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(CONFIG)
    return path


def test_devices_json_marks_missing_config_entries(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cfg), "devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"serial_ports", "usb_devices", "input_devices", "missing"}
    assert set(data["missing"]) == {"scanner", "receipt", "msr"}  # tcp is not discoverable


def test_devices_table(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cfg), "devices"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["KIND", "DEVICE"]
    assert "missing: receipt" in out


def test_udev_rules_grant_the_group_only(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "99-posbridge.rules"
    assert main(["--config", str(cfg), "udev-rules", "-o", str(out_file)]) == 0
    text = out_file.read_text()
    rules = check_rules_file(text)
    assert len(rules) >= 3
    assert 'SYMLINK+="posbridge/receipt"' in text and 'SYMLINK+="posbridge/msr"' in text
    assert 'MODE="0660"' in text and "0666" not in text and 'GROUP="posbridge"' in text
    assert oct(os.stat(out_file).st_mode & 0o777) == "0o644"


def test_udev_rules_without_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.split("[[devices]]")[0])
    assert main(["--config", str(path), "udev-rules"]) == 2
    assert "no USB, serial or input devices" in capsys.readouterr().err
