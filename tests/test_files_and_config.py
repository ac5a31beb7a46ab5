"""Files the service reads and writes: who else may read or change them, and what a log
line may carry."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import logs
from bridge.cli import main
from bridge.doctor import run_checks
from tests.conftest import LOGIN, PASSWORD

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "file-test-token-0123456789"


def write_cfg(tmp_path: Path, mode: int, *, inline: bool = True) -> Path:
    """A config with the password and token inline (or in 0600 files), at `mode`."""
    if inline:
        secrets = f'password = "{PASSWORD}"\n', f'token = "{TOKEN}"\n'
    else:
        for name, value in (("password", PASSWORD), ("token", TOKEN)):
            (tmp_path / name).write_text(value)
            (tmp_path / name).chmod(0o600)
        secrets = (
            f'password_file = "{tmp_path / "password"}"\n',
            f'token_file = "{tmp_path / "token"}"\n',
        )
    path = tmp_path / "posbridge.toml"
    path.write_text(
        f'[processing]\nurl = "http://127.0.0.1:9/publicapi"\nlogin = "{LOGIN}"\n{secrets[0]}'
        f'lock_file = "{tmp_path / "lock"}"\nconnect_timeout = 0.5\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n[api]\n{secrets[1]}'
    )
    path.chmod(mode)
    return path


# ---------------------------------------------------------------------- config modes


def test_config_check_warns_when_others_can_read_inline_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, 0o644)
    assert main(["config", "check", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out
    assert "readable by others" in err and "processing.password and api.token" in err
    assert "chmod o-r" in err and PASSWORD not in err and TOKEN not in err

    cfg.chmod(0o640)
    assert main(["config", "check", str(cfg)]) == 0
    assert capsys.readouterr().err == ""


def test_secrets_kept_in_their_own_files_are_no_concern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, 0o644, inline=False)
    assert main(["config", "check", str(cfg)]) == 0
    assert capsys.readouterr().err == ""


def test_a_config_others_can_write_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_cfg(tmp_path, 0o666, inline=False)
    assert main(["config", "check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "writable by others (mode 0666)" in err and f"chmod o-w {cfg}" in err


def test_run_refuses_to_start_on_a_config_others_can_write(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, 0o666)
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "refusing to start" in lines[0] and "writable by others" in lines[0]
    assert f"chmod o-w {cfg}" in lines[0]


def test_doctor_reports_the_config_file_mode(tmp_path: Path) -> None:
    def verdicts(mode: int) -> dict[str, str]:
        write_cfg(tmp_path, mode)
        return {
            c.detail: c.verdict
            for c in run_checks(str(tmp_path / "posbridge.toml"))
            if c.name == "config file"
        }

    found = verdicts(0o644)
    assert list(found.values()) == ["warn"] and "readable by others" in next(iter(found))
    found = verdicts(0o666)
    assert sorted(found.values()) == ["fail", "warn"]
    assert any("writable by others" in d for d, v in found.items() if v == "fail")
    assert list(verdicts(0o600).values()) == ["pass"]


# ---------------------------------------------------------------------- log files


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_rotated_log_files_get_the_mode_of_the_first(tmp_path: Path, restore_logging: None) -> None:
    log_file = tmp_path / "posbridge.log"
    old = os.umask(0o022)
    try:
        logs.setup("INFO", log_file)
        handler = logging.getLogger().handlers[-1]
        assert isinstance(handler, logging.handlers.RotatingFileHandler)
        handler.maxBytes = 300  # rotate after a few lines
        for n in range(20):
            logging.getLogger("posbridge.test").info("line %d of the rotation test", n)
    finally:
        os.umask(old)
    files = sorted(tmp_path.glob("posbridge.log*"))
    assert len(files) == 6  # the live file and 5 rotated ones
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o640 for f in files}


def test_log_file_that_is_a_symlink_is_refused(tmp_path: Path, restore_logging: None) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "posbridge.log"
    link.symlink_to(target)
    cfg = write_cfg(tmp_path, 0o600)
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(cfg), "run", "--log-file", str(link)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "symbolic link" in done.stderr
    assert target.read_text() == ""
    dangling = tmp_path / "dangling"  # a link to a file yet to be made: refused as well
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(logs.LogFileError, match="symbolic link"):
        logs.setup("INFO", dangling)
    assert not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------------- log lines


def line_for(message: str, exc: BaseException | None = None) -> str:
    record = logging.LogRecord(
        "posbridge.test",
        logging.WARNING,
        __file__,
        1,
        "%s",
        (message,),
        (type(exc), exc, None) if exc else None,
    )
    return logs.KeyValueFormatter(with_time=False).format(record)


def test_log_values_never_carry_raw_control_characters_or_quotes() -> None:
    hostile = 'scan "x" ok\x00\x1b[2J\x1b]0;pwned\x07\rlevel=error fake\x85\u2028'
    line = line_for(hostile, ValueError('bad "value"\x1b[31m'))
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line), repr(line)
    assert "\u2028" not in line
    assert 'msg="scan \\"x\\" ok\\x00\\x1b[2J\\x1b]0;pwned\\x07\\rlevel=error fake' in line
    assert 'error="ValueError: bad \\"value\\"\\x1b[31m"' in line
    # every quote left in the line opens or closes a value: key=value parsing holds
    assert line.replace('\\"', "").count('"') == 4


def test_plain_values_stay_plain() -> None:
    assert line_for("started").endswith("msg=started")
    assert line_for("cheque opened").endswith('msg="cheque opened"')
    assert line_for("a=b").endswith('msg="a=b"')
    assert line_for("two\nlines").endswith('msg="two | lines"')
