"""Configuration: every problem at once, named by key and value; secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge import config

GOOD = """
[processing]
url = "https://processing.example/publicapi"
login = "register-1"
password = "hunter2-very-secret"
"""


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_fills_defaults(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.processing.read_timeout == 10.0
    assert cfg.api.host == "127.0.0.1"
    assert cfg.processing.secret_password() == "hunter2-very-secret"
    assert "hunter2" not in repr(cfg)


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = (Path(__file__).parent.parent / "posbridge.example.toml").read_text()
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o600)
    text = example.replace("/etc/posbridge/processing.password", str(pw))
    cfg = config.load(write(tmp_path, text))
    assert {d.name for d in cfg.devices} == {"scanner", "msr", "receipt"}


def test_every_problem_is_reported_with_key_and_value(tmp_path: Path) -> None:
    bad = """
[processing]
url = "ftp://x"
login = ""
password = "hunter2-very-secret"
read_timeout = -1
colour = "blue"

[api]
host = "0.0.0.0"

[[devices]]
name = "scanner"
kind = "toaster"
connection = "serial"
"""
    with pytest.raises(config.ConfigError) as info:
        config.load(write(tmp_path, bad))
    text = info.value.render()
    assert "processing.url" in text and "'ftp://x'" in text and "https://" in text
    assert "processing.login" in text
    assert "processing.read_timeout" in text and "-1" in text
    assert "processing.colour: unknown key" in text
    assert "api.host" in text and "loopback" in text
    assert "devices[0].kind" in text and "toaster" in text
    assert "hunter2" not in text
    assert "Traceback" not in text


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="TOML syntax error.*line 2"):
        config.load(write(tmp_path, "[processing]\nurl = \n"))


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="file not found.*--config"):
        config.load(tmp_path / "nope.toml")


def test_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv(config.ENV_VAR, str(path))
    assert config.resolve_path(None) == path
    assert config.load().processing.login == "register-1"


def test_password_file_must_be_private(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cr3t-from-file\n")
    pw.chmod(0o644)
    text = GOOD.replace('password = "hunter2-very-secret"', f'password_file = "{pw}"')
    with pytest.raises(config.ConfigError, match="readable by group or others.*chmod 0600"):
        config.load(write(tmp_path, text))
    pw.chmod(0o600)
    cfg = config.load(write(tmp_path, text))
    assert cfg.processing.secret_password() == "s3cr3t-from-file"


def test_exactly_one_password_source(tmp_path: Path) -> None:
    text = GOOD.replace('password = "hunter2-very-secret"\n', "")
    with pytest.raises(config.ConfigError, match="exactly one of processing.password"):
        config.load(write(tmp_path, text))


def test_secret_value_in_a_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    text = GOOD.replace('password = "hunter2-very-secret"', "password = 123456789")
    with pytest.raises(config.ConfigError) as info:
        config.load(write(tmp_path, text))
    assert "123456789" not in info.value.render()
    assert "processing.password" in info.value.render()


def test_plain_http_only_on_loopback(tmp_path: Path) -> None:
    text = GOOD.replace("https://processing.example", "http://processing.example")
    with pytest.raises(config.ConfigError, match="loopback"):
        config.load(write(tmp_path, text))
    ok = GOOD.replace("https://processing.example", "http://127.0.0.1:8900")
    assert config.load(write(tmp_path, ok)).processing.url == "http://127.0.0.1:8900/publicapi"


def test_redacted_show_hides_secrets(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, GOOD + '\n[api]\ntoken = "tok-abcdef"\n'))
    shown = config.to_toml(config.redacted(cfg))
    assert "hunter2" not in shown and "tok-abcdef" not in shown
    assert 'password = "***"' in shown and 'token = "***"' in shown
    # what `config show` prints is itself a valid config (modulo the redacted secrets)
    import tomllib

    assert tomllib.loads(shown)["processing"]["login"] == "register-1"


def test_receipt_printer_must_exist(tmp_path: Path) -> None:
    text = GOOD + '\n[receipt]\nprinter = "front"\n'
    with pytest.raises(
        config.ConfigError, match="receipt.printer: 'front' is not a configured printer"
    ):
        config.load(write(tmp_path, text))


def test_device_needs_its_address(tmp_path: Path) -> None:
    text = GOOD + '\n[[devices]]\nname = "p"\nkind = "printer"\nconnection = "tcp"\n'
    with pytest.raises(config.ConfigError, match="devices\\[0\\].*needs `host`"):
        config.load(write(tmp_path, text))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'[processing]\nlogin = "\xff"\n')
    with pytest.raises(config.ConfigError, match="not UTF-8"):
        config.load(path)
    assert os.path.exists(path)
