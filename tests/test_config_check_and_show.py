"""`config check` tells the truth about `run`, and `config show` prints a config that loads back.

Round trip: check(show(x)) == x through the real loader (a file on disk, `config.load`),
for the example config and for generated ones.  Agreement: for each file situation,
`config check` accepts exactly when `posbridge run` starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import config
from bridge.cli import main
from bridge.supported_devices import SUPPORTED
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[1]


def show_and_load(cfg: config.Config, where: Path) -> config.Config:
    """What `config show` prints, written to a file and read with the real loader."""
    path = where / "shown.toml"
    path.write_text(config.to_toml(config.redacted(cfg)), encoding="utf-8")
    return config.load(path)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("secrets")
    for name in ("pw", "token"):
        (base / name).write_text("s3cret-value\n")
        (base / name).chmod(0o600)
    return base


def test_example_config_round_trips(secrets: Path, tmp_path: Path) -> None:
    text = (ROOT / "posbridge.example.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["processing"]["password_file"] = str(secrets / "pw")
    data["processing"].pop("password", None)
    cfg = config.parse(data)
    assert cfg.barcodes.loyalty  # the table that was printed as Python reprs
    assert show_and_load(cfg, tmp_path) == cfg


def test_show_prints_barcodes_as_toml_not_python(
    secrets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[processing]\nurl = "https://p.example/api"\nlogin = "a"\n'
        f'password_file = "{secrets / "pw"}"\n'
    )
    assert main(["config", "show", str(path)]) == 0  # FILE accepted, as by `config check`
    shown = capsys.readouterr().out
    assert "[[barcodes.loyalty]]" in shown and "{'prefix'" not in shown
    assert config.parse(tomllib.loads(shown)) == config.load(path)


NAME = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
TEXT = st.text(min_size=1, max_size=20)
SECONDS = st.floats(min_value=0.001, max_value=600, allow_nan=False)


@st.composite
def devices(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Entries of every supported (kind, connection) pair, each with only its own keys.

    Registrars are left out: their password shows as *** and cannot load back
    (tests/test_device_config.py checks that separately)."""
    names = draw(st.lists(NAME, max_size=3, unique=True))
    out = []
    for name in names:
        kind = draw(st.sampled_from(["scanner", "card_reader", "printer"]))
        connection = draw(st.sampled_from(SUPPORTED[kind]))
        d: dict[str, Any] = {"name": name, "connection": connection, "kind": kind}
        if connection in ("serial", "file", "hid"):
            d["port"] = draw(st.sampled_from(["/dev/ttyS0", "/dev/usb/lp0", "socket://x:1"]))
        if connection == "usb" or (connection in ("serial", "hid") and draw(st.booleans())):
            d["usb"] = draw(st.sampled_from(["04b8:0e15", "0c2e:0b61:SER1"]))
        if connection == "tcp":
            d["host"] = draw(st.sampled_from(["192.0.2.10", "printer.local"]))
        if connection == "serial":
            d["baudrate"] = draw(st.integers(1, 115200))
            d["flow"] = draw(st.sampled_from(["none", "rtscts", "xonxoff"]))
        if kind == "scanner":
            d["prefix"] = draw(st.text(max_size=4))
        if kind == "printer":
            d["codepage_slot"] = draw(st.none() | st.integers(0, 255))
            d["paper_mm"] = draw(st.sampled_from([58, 80]))
        out.append(d)
    return out


@st.composite
def configs(draw: st.DrawFn, secrets: Path) -> dict[str, Any]:
    lo = draw(SECONDS)
    devs = draw(devices())
    printers = [d["name"] for d in devs if d["kind"] == "printer"]
    data: dict[str, Any] = {
        "processing": {
            "url": draw(st.sampled_from(["https://p.example/publicapi", "http://127.0.0.1:8900"])),
            "login": draw(TEXT),
            "password_file": str(secrets / "pw"),
            "register_id": draw(st.text(min_size=1, max_size=64)),
            "deadline": draw(SECONDS),
            "max_answer_bytes": draw(st.integers(1024, 1 << 30)),
        },
        "barcodes": {
            "loyalty": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "prefix": st.from_regex(r"[0-9]{0,6}", fullmatch=True),
                            "length": st.integers(4, 64),
                            "check": st.sampled_from(["ean", "luhn", "none"]),
                        },
                        optional={"symbology": st.sampled_from(["]E0", "]C1"])},
                    ),
                    max_size=3,
                )
            ),
            "weight_templates": draw(
                st.lists(
                    st.sampled_from(["20PPPPPWWWWWC", "23PPPPP$$$$$C", "2PPPPPPWWWWWC"]), max_size=3
                )
            ),
        },
        "journal": {
            "probe_min_seconds": lo,
            "probe_max_seconds": draw(st.floats(min_value=lo, max_value=600)),
        },
        "api": {"token_file": str(secrets / "token"), "port": draw(st.integers(1, 65535))},
        "receipt": {
            "language": draw(st.sampled_from(["ru", "en"])),
            "columns": draw(st.sampled_from([32, 42, 48])),
        },
        "devices": devs,
    }
    if draw(st.booleans()):
        data["processing"]["cashier"] = draw(TEXT)
    if draw(st.booleans()) and printers:
        data["receipt"]["printer"] = printers[0]
    return data


@pytest.mark.parametrize("seed", [0])
def test_generated_configs_round_trip(secrets: Path, tmp_path: Path, seed: int) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(configs(secrets))
    def round_trip(data: dict[str, Any]) -> None:
        cfg = config.parse(data)
        assert show_and_load(cfg, tmp_path) == cfg

    round_trip()


def test_inline_secrets_round_trip_as_stars(tmp_path: Path) -> None:
    cfg = config.parse(
        {
            "processing": {"url": "https://p.example/x", "login": "a", "password": "hunter2"},
            "api": {"token": "t0k"},
        }
    )
    back = show_and_load(cfg, tmp_path)
    assert back.processing.secret_password() == "***" and back.api.secret_token() == "***"
    same = back.model_copy(update={"processing": cfg.processing, "api": cfg.api})
    assert same == cfg


# ------------------------------------------------------------- check agrees with run


def situation(tmp_path: Path, name: str) -> Path:
    """A config with one file problem (or none, for "ok")."""
    token = tmp_path / "api.token"
    token.write_text("a-long-random-token-0123456789")
    token.chmod(0o600)
    journal = tmp_path / "state" / "journal.sqlite"
    lock = tmp_path / "state" / "processing.lock"
    if name == "token missing":
        token.unlink()
    elif name == "token world-readable":
        token.chmod(0o644)
    elif name == "token empty":
        token.write_text("")
    elif name == "token is a directory":
        token.unlink()
        token.mkdir()
    elif name == "journal under a file":
        (tmp_path / "afile").write_text("x")
        journal = tmp_path / "afile" / "journal.sqlite"
    elif name == "journal is a directory":
        journal.mkdir(parents=True)
    elif name == "lock in a new nested folder":
        lock = tmp_path / "new" / "deeper" / "processing.lock"
    elif name == "ca file not a certificate":
        (tmp_path / "ca.pem").write_text("not a certificate\n")
    path = tmp_path / "posbridge.toml"
    ca = f'ca_file = "{tmp_path / "ca.pem"}"\n' if name.startswith("ca file") else ""
    path.write_text(
        f'[processing]\nurl = "http://127.0.0.1:{free_port()}/publicapi"\nlogin = "a"\n'
        f'password = "b"\nlock_file = "{lock}"\n{ca}[journal]\npath = "{journal}"\n'
        f'[api]\nport = {free_port()}\ntoken_file = "{token}"\n'
    )
    path.chmod(0o600)
    return path


SITUATIONS = {  # name -> does `config check` accept it
    "ok": True,
    "lock in a new nested folder": True,
    "token missing": False,
    "token world-readable": False,
    "token empty": False,
    "token is a directory": False,
    "journal under a file": False,
    "journal is a directory": False,
    "ca file missing": False,
    "ca file not a certificate": False,
}


def starts(path: Path) -> tuple[bool, str]:
    """Whether `posbridge run` comes up on this config (stopped again at once)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(path), "--log-level", "INFO", "run"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:  # the service says when it is up: no polling, no sleeping
            seen.append(line)
            if "running on" in line or "Application startup" in line:
                proc.send_signal(signal.SIGTERM)
                seen.append(proc.stderr.read())
                return proc.wait(timeout=30) == 0, "".join(seen)
        return False, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("name", sorted(SITUATIONS))
def test_config_check_accepts_exactly_what_run_starts(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = situation(tmp_path, name)
    accepted = main(["config", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert accepted is SITUATIONS[name], err
    started, log = starts(path)
    assert started is accepted, log
    assert "Traceback" not in log and "Traceback" not in err
    if not accepted:  # the problem line names the key
        key = {"token": "api.token_file", "journal": "journal.path", "ca": "processing.ca_file"}
        assert f"- {key[name.split()[0]]}: " in err, err


def test_every_problem_in_one_run(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o644)
    path = tmp_path / "c.toml"
    path.write_text(
        f'[processing]\nurl = "ftp://x"\nlogin = "a"\npassword = "hunter2"\n'
        f'password_file = "{pw}"\nread_timeout = "soon"\n'
        "[journal]\nprobe_min_seconds = 30.0\nprobe_max_seconds = 5.0\n"
        '[receipt]\nprinter = "front"\ncolumns = 40\n'
        '[[devices]]\nname = "p"\nkind = "printer"\nconnection = "tcp"\n'
        '[[devices]]\nname = "p"\nkind = "scanner"\nconnection = "serial"\nport = "/dev/x"\n'
    )
    with pytest.raises(config.ConfigError) as info:
        config.load(path, service=True)
    text = info.value.render()
    for expected in (
        "processing.url",
        "processing.read_timeout",
        "'soon'",
        "both password and password_file",
        "probe_max_seconds",
        "receipt.printer: 'front'",
        "receipt.columns",
        "devices[0]: a tcp device",
        "repeated: p",
        "password_file",
        "chmod 0600",
        "api.token_file: missing",
    ):
        assert expected in text, (expected, text)
    assert "hunter2" not in text and "Value error" not in text and "Input should" not in text


def test_a_config_others_can_write_is_reported_with_its_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[processing]\nurl = "ftp://x"\nlogin = "a"\npassword = "b"\n')
    path.chmod(0o666)
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "processing.url" in err and "writable by others" in err and "api.token_file" in err
