"""The `posbridge` command: exit codes, help everywhere, machine-readable output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bridge import __version__
from bridge.cli import COMMANDS, build_parser, main
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[1]
CHEQUE = {
    "number": "77",
    "date": "2026-11-29T15:00:00",
    "lines": [
        {
            "position": 1,
            "goodsId": "1001",
            "barcode": "4600000000015",
            "name": "Milk",
            "price": "89.90",
            "quantity": "2",
            "amount": "179.80",
        },
        {
            "position": 2,
            "goodsId": "5001",
            "name": "Dish soap",
            "price": "150.00",
            "quantity": "1",
            "amount": "150.00",
        },
    ],
}


@pytest.fixture
def cfg(sandbox_server: SandboxServer, tmp_path: Path) -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "{sandbox_server.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "lock"}"\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n[api]\ntoken = "t0ken-t0ken"\n'
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def cheque_file(tmp_path: Path) -> Path:
    path = tmp_path / "cheque.json"
    path.write_text(json.dumps(CHEQUE))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"posbridge {__version__}"


def test_version_does_not_import_the_heavy_parts() -> None:
    code = (
        "import sys\nfrom bridge.cli import main\nmain(['--version'])\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'serial', 'escpos') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().endswith("[]"), out.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: posbridge" in capsys.readouterr().out


def test_help_never_shows_secrets(cfg: Path) -> None:
    text = build_parser().format_help()
    assert PASSWORD not in text


def test_config_check_and_show(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cfg), "config", "check"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["--config", str(cfg), "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert PASSWORD not in shown and 'password = "***"' in shown


def test_bad_config_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[processing]\nurl = "x"\nlogin = "a"\npassword = "p4ss-w0rd"\nread_timeout = "soon"\n'
    )
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "processing.url" in err and "processing.read_timeout" in err and "'soon'" in err
    assert "p4ss-w0rd" not in err and "Traceback" not in err


def test_balance(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cfg), "balance", "2775000000012", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert out == {"card": "27*******0012", "balance": Decimal("500.00"), "cashierMessage": None}


def test_purchase_json(cfg: Path, cheque_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "--config",
            str(cfg),
            "purchase",
            "--card",
            "2775000000012",
            "--cheque",
            str(cheque_file),
            "--pay",
            "40",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert rc == 0
    assert out["redeemed"] == Decimal("40.00") and out["accrued"] > 0
    assert out["balance"] == Decimal("500.00") - Decimal("40.00") + out["accrued"]
    assert out["card"] == "27*******0012"


def test_purchase_table(cfg: Path, cheque_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--config",
                str(cfg),
                "purchase",
                "--card",
                "2775000000012",
                "--cheque",
                str(cheque_file),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "bonuses accrued" in out and "27*******0012" in out and "2775000000012" not in out


def test_refusal_exits_1_with_cashier_text(
    cfg: Path, cheque_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["--config", str(cfg), "purchase", "--card", "2775000000036", "--cheque", str(cheque_file)]
    )
    assert rc == 1
    assert "Card is blocked" in capsys.readouterr().err


def test_unreachable_exits_3(
    tmp_path: Path, cheque_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[processing]\nurl = "http://127.0.0.1:{free_port()}/publicapi"\nlogin = "a"\npassword = "b"\n'
        f'lock_file = "{tmp_path / "lock"}"\n'
    )
    assert main(["--config", str(path), "balance", "2775000000012"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_bad_cheque_file_exits_2(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"number": "1", "lines": [')
    assert main(["--config", str(cfg), "purchase", "--cheque", str(broken)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**CHEQUE, "lines": [{**CHEQUE["lines"][0], "price": "abc"}]}))  # type: ignore[dict-item]
    assert main(["--config", str(cfg), "purchase", "--cheque", str(wrong)]) == 2
    assert "lines.0.price" in capsys.readouterr().err


def test_bad_pay_amount_exits_2(
    cfg: Path, cheque_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "--config",
                str(cfg),
                "purchase",
                "--card",
                "2775000000012",
                "--cheque",
                str(cheque_file),
                "--pay",
                "lots",
            ]
        )
        == 2
    )
    assert "--pay" in capsys.readouterr().err


def test_wrong_password_exits_2(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg.write_text(cfg.read_text().replace(PASSWORD, "nope-nope"))
    assert main(["--config", str(cfg), "balance", "2775000000012"]) == 2
    err = capsys.readouterr().err
    assert "login/password" in err and "nope-nope" not in err
