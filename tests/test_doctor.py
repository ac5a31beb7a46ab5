"""`posbridge doctor` on real parts: sandbox, pty devices, journal file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.doctor import _clock, run_checks
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.drivers.pty_helpers import Pty


def write_cfg(tmp_path: Path, url: str, password: str = PASSWORD, devices: str = "") -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{password}"\n'
        f'lock_file = "{tmp_path / "lock"}"\n[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
        + devices
    )
    return path


def verdicts(checks: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {c.name: c.verdict for c in checks}


def test_healthy_register(sandbox_server: SandboxServer, tmp_path: Path) -> None:
    with Pty() as scanner:
        os.chmod(scanner.path, 0o660)
        devices = (
            f'[[devices]]\nname = "scanner"\nkind = "scanner"\nconnection = "serial"\n'
            f'port = "{scanner.path}"\n'
        )
        cfg = write_cfg(tmp_path, sandbox_server.url, devices=devices)
        (tmp_path / "journal.sqlite").touch(mode=0o600)
        import grp

        group = grp.getgrgid(os.stat(scanner.path).st_gid).gr_name
        checks = run_checks(str(cfg), service_group=group)
    v = verdicts(checks)
    assert v["config"] == "pass" and v["processing reachable"] == "pass"
    assert v["credentials"] == "pass" and v["clock"] == "pass"
    assert v["device scanner access"] == "pass" and v["device scanner opens"] == "pass"
    assert v["journal"] == "pass" and v["disk"] == "pass"


def test_everything_wrong_is_reported_at_once(
    tmp_path: Path, sandbox_server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = (
        '[[devices]]\nname = "gone"\nkind = "scanner"\nconnection = "serial"\n'
        'port = "/dev/does-not-exist"\n'
    )
    cfg = write_cfg(tmp_path, sandbox_server.url, password="wrong-one", devices=devices)
    rc = main(["--config", str(cfg), "doctor", "--json"])
    out = json.loads(capsys.readouterr().out)
    v = {c["check"]: c for c in out}
    assert rc == 1
    assert (
        v["device gone port"]["verdict"] == "fail"
        and "posbridge devices" in v["device gone port"]["fix"]
    )
    assert v["credentials"]["verdict"] == "fail" and "partner settings" in v["credentials"]["fix"]
    assert "wrong-one" not in json.dumps(out)


def test_unreachable_processing_and_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, "http://127.0.0.1:9/publicapi")
    assert main(["--config", str(cfg), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] processing reachable" in out and "fix:" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[processing]\n")
    assert main(["--config", str(bad), "doctor"]) == 1
    assert "[FAIL] config" in capsys.readouterr().out


def test_clock_skew() -> None:
    from email.utils import formatdate

    date = formatdate(1_700_000_000, usegmt=True)
    assert _clock(date, lambda: 1_700_000_010).verdict == "pass"
    assert _clock(date, lambda: 1_700_000_000 + 300).verdict == "warn"
    assert _clock(date, lambda: 1_700_000_000 - 3600).verdict == "fail"
    assert _clock(None, time.time).verdict == "warn"
