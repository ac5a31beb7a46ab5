"""Issue 12's "also fix" list: each mistake a technician made, answered in one line.

Against the real sandbox where processing matters; against a closed port where the point
is that nothing was sent (exit 2, not 3: the mistake was caught before the network).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import logs
from bridge.cli import main
from bridge.doctor import run_checks
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[1]
EXIT_BUG = 70  # EX_SOFTWARE
CHEQUE = {
    "number": "77",
    "date": "2026-11-29T15:00:00",
    "lines": [
        {
            "position": 1,
            "goodsId": "1001",
            "name": "Milk",
            "price": "89.90",
            "quantity": "2",
            "amount": "179.80",
        }
    ],
}


def write_cfg(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp_path / "lock"}"\n[journal]\npath = "{tmp_path / "j.sqlite"}"\n' + extra
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def offline_cfg(tmp_path: Path) -> Path:
    """Processing on a closed port: anything sent would end in exit 3."""
    return write_cfg(tmp_path, f"http://127.0.0.1:{free_port()}/publicapi")


@pytest.fixture
def cheque(tmp_path: Path) -> Path:
    path = tmp_path / "cheque.json"
    path.write_text(json.dumps(CHEQUE))
    return path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Value error" not in err and "Input should" not in err
    return lines[0]


def test_config_is_accepted_after_the_subcommand(
    sandbox_server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, sandbox_server.url)
    assert main(["balance", "2775000000012", "--config", str(cfg), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["card"] == "27*******0012"
    assert main(["journal", "status", "--config", str(cfg)]) == 0
    assert main(["config", "show", str(cfg)]) == 0
    assert f'login = "{LOGIN}"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "card, why",
    [
        ("", "empty"),
        ("abc", "not a card number"),
        ("2775000000013", "check digit"),
        ("27750000000-2", "not a card number"),
    ],
)
def test_balance_catches_bad_cards_locally(
    offline_cfg: Path, card: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(offline_cfg), "balance", card]) == 2
    line = one_line(capsys.readouterr().err)
    assert why in line and "2775000000013" not in line


def test_a_good_card_is_sent(offline_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same config, a valid card: now processing is asked (and is not there)
    assert main(["--config", str(offline_cfg), "balance", "2775000000012"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_check_digit_applies_only_where_the_range_defines_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(
        tmp_path,
        f"http://127.0.0.1:{free_port()}/publicapi",
        '[[barcodes.loyalty]]\nprefix = "99"\nlength = 8\ncheck = "none"\n',
    )
    assert main(["--config", str(cfg), "balance", "99123456"]) == 3  # no check: sent
    assert main(["--config", str(cfg), "balance", "2775000000013"]) == 3  # no range: sent
    capsys.readouterr()


def test_purchase_with_an_empty_card_is_refused(
    offline_cfg: Path, cheque: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["--config", str(offline_cfg), "purchase", "--card", "", "--cheque", str(cheque)])
    assert rc == 2
    assert "--card is empty" in one_line(capsys.readouterr().err)


def test_pay_with_three_decimals_is_refused(
    offline_cfg: Path, cheque: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "--config",
            str(offline_cfg),
            "purchase",
            "--card",
            "2775000000012",
            "--cheque",
            str(cheque),
            "--pay",
            "1.234",
        ]
    )
    assert rc == 2
    assert "--pay '1.234' has more than 2 decimal places" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "key, value", [("price", "89.905"), ("amount", "179.801"), ("discount", "0.001")]
)
def test_cheque_money_with_three_decimals_is_refused(
    offline_cfg: Path, tmp_path: Path, key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c3.json"
    path.write_text(json.dumps({**CHEQUE, "lines": [{**CHEQUE["lines"][0], key: value}]}))  # type: ignore[dict-item]
    assert main(["--config", str(offline_cfg), "purchase", "--cheque", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"lines.0.{key}: {value} has more than 2 decimal places" in line


def test_cheque_of_the_wrong_shape_speaks_plainly(
    offline_cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for body in ([1, 2], {"cheque": "x"}, {**CHEQUE, "lines": ["x"]}, {**CHEQUE, "lines": 5}):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(body))
        assert main(["--config", str(offline_cfg), "purchase", "--cheque", str(path)]) == 2
        line = one_line(capsys.readouterr().err)
        assert "instance of" not in line and "Cheque" not in line.split(":", 1)[1], line


def test_a_wrong_url_path_is_a_config_error(
    sandbox_server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = sandbox_server.url.rsplit("/", 1)[0]
    cfg = write_cfg(tmp_path, base + "/no-such-api")
    assert main(["--config", str(cfg), "balance", "2775000000012"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "processing.url" in line and "404" in line


def test_an_unexpected_error_is_one_line_and_70(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import bridge.commands.decode as decode

    def boom(args: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(decode, "run", boom)
    assert main(["decode", "barcode", "x"]) == EXIT_BUG
    line = one_line(capsys.readouterr().err)
    assert "something nobody expected" in line and "--debug" in line
    assert main(["decode", "barcode", "x", "--debug"]) == EXIT_BUG
    assert "Traceback" in capsys.readouterr().err


def test_test_print_without_printers_says_so(
    offline_cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(offline_cfg), "test-print"]) == 2
    assert one_line(capsys.readouterr().err).endswith(
        'no printer configured: add a [[devices]] entry with kind = "printer"'
    )


@pytest.mark.parametrize(
    "device",
    [
        'connection = "usb"\nusb = "04b8:0e15"',
        f'connection = "tcp"\nhost = "127.0.0.1"\ntcp_port = {free_port()}',
        'connection = "file"\nport = "/dev/usb/posbridge-absent-lp0"',
    ],
)
def test_test_print_with_the_printer_absent(
    tmp_path: Path, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(
        tmp_path,
        f"http://127.0.0.1:{free_port()}/publicapi",
        f'[[devices]]\nname = "p"\nkind = "printer"\n{device}\n',
    )
    assert main(["--config", str(cfg), "test-print"]) == 3
    assert "printer p" in one_line(capsys.readouterr().err)


def test_run_with_a_missing_token_file(
    offline_cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offline_cfg.write_text(
        offline_cfg.read_text() + f'[api]\ntoken_file = "{tmp_path / "api.token"}"\n'
    )
    assert main(["--config", str(offline_cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "api.token_file" in err and "does not exist" in err and "Traceback" not in err


def test_journal_export_to_proc(offline_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(offline_cfg), "journal", "export", "/proc/x.jsonl"]) == 2
    assert "/proc" in one_line(capsys.readouterr().err)


def test_run_logs_at_warning_by_default_each_device_failure_once(tmp_path: Path) -> None:
    token = tmp_path / "api.token"
    token.write_text("a-long-random-token-0123456789")
    token.chmod(0o600)
    cfg = write_cfg(
        tmp_path,
        f"http://127.0.0.1:{free_port()}/publicapi",
        f'[api]\nport = {free_port()}\ntoken_file = "{token}"\n'
        '[[devices]]\nname = "gone"\nkind = "printer"\nconnection = "file"\n'
        'port = "/dev/usb/posbridge-absent-lp0"\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()  # the one warning the absent printer is worth
        proc.send_signal(signal.SIGTERM)  # (its handler may not be set yet: any exit will do)
        rest = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = first + rest
    assert "level=warning" in first and "gone" in first
    assert "level=info" not in text, text
    assert sum("gone" in line for line in text.splitlines()) == 1, text


def test_escpos_chatter_is_not_a_root_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup("INFO")
    try:
        from escpos.printer import File

        printer = File(str(tmp_path / "printer.bin"))
        printer.open()
        printer.close()
    finally:
        logging.getLogger().handlers.clear()
    assert "logger=root" not in capsys.readouterr().err


# ---------------------------------------------------------------------- doctor


def test_doctor_absent_printers_fail_like_devices_says_missing(tmp_path: Path) -> None:
    devices = "".join(
        f'[[devices]]\nname = "{n}"\nkind = "printer"\n{d}\n'
        for n, d in [
            ("usbp", 'connection = "usb"\nusb = "04b8:0e15"'),
            ("tcpp", f'connection = "tcp"\nhost = "127.0.0.1"\ntcp_port = {free_port()}'),
        ]
    )
    cfg = write_cfg(tmp_path, f"http://127.0.0.1:{free_port()}/publicapi", devices)
    checks = {c.name: c for c in run_checks(str(cfg))}
    for name in ("usbp", "tcpp"):
        check = checks[f"device {name} answers"]
        assert check.verdict == "fail" and "missing" in check.detail
    assert (
        checks["credentials"].verdict == "skip" and "not reachable" in checks["credentials"].detail
    )
    assert checks["clock"].verdict == "skip"


def test_doctor_credentials_line_shows_no_dummy_card(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    cfg = write_cfg(tmp_path, sandbox_server.url)
    checks = {c.name: c for c in run_checks(str(cfg))}
    assert checks["credentials"].verdict == "pass"
    assert "0000" not in checks["credentials"].detail
    cfg.write_text(cfg.read_text().replace(PASSWORD, "wrong-password"))
    checks = {c.name: c for c in run_checks(str(cfg))}
    assert checks["credentials"].verdict == "fail"
    assert "0000" not in checks["credentials"].detail and "card" not in checks["credentials"].detail


def test_doctor_unopenable_lock_file_is_a_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, f"http://127.0.0.1:{free_port()}/publicapi")
    (tmp_path / "lock").mkdir()  # a directory where the lock file should be
    assert main(["--config", str(cfg), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] processing lock" in out and "[SKIP] credentials" in out
    assert "[PASS] journal" in out  # the checks after it still ran


def test_doctor_never_suggests_editing_a_missing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["--config", str(missing), "doctor"]) == 1
    out = capsys.readouterr().out
    assert f"edit {missing}" not in out and f"create {missing}" in out
