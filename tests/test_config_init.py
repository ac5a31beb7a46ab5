"""`posbridge config init --sandbox`: a starter config that passes `config check` and works.

Against the real sandbox over loopback: init into a fresh directory, check it, and ask a
balance with nothing else set up, as a technician on a fresh machine would.
"""

from __future__ import annotations

import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from bridge import config
from bridge.cli import main
from bridge.commands import config_init
from sandbox.server import SandboxServer


def _init(directory: Path, *extra: str) -> int:
    return main(["config", "init", "--sandbox", "--dir", str(directory), *extra])


def test_init_writes_a_config_that_checks_and_talks_to_the_sandbox(
    sandbox_server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "fresh" / "posbridge"  # does not exist yet: init creates it
    assert _init(home, "--url", sandbox_server.url) == 0
    capsys.readouterr()
    cfg_path = home / "posbridge.toml"
    for secret in ("processing.password", "api.token"):
        assert stat.S_IMODE((home / secret).stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(cfg_path.stat().st_mode) & 0o007 == 0

    assert main(["--config", str(cfg_path), "config", "check"]) == 0
    assert "OK" in capsys.readouterr().out

    cfg = config.load(cfg_path)
    assert cfg.processing.url == sandbox_server.url
    assert cfg.processing.secret_password() == config_init.SANDBOX_PASSWORD
    token = cfg.api.secret_token()
    assert token is not None and len(token) == 48
    for path in (cfg.journal.path, cfg.cheques_path(), cfg.processing.lock_file):
        assert path.parent == home, path
    assert cfg.devices == []

    assert main(["--config", str(cfg_path), "balance", "2775000000012", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert out["balance"] == Decimal("500.00")


def test_two_inits_give_two_different_tokens(tmp_path: Path) -> None:
    assert _init(tmp_path / "a") == 0 and _init(tmp_path / "b") == 0
    a, b = ((tmp_path / d / "api.token").read_text() for d in "ab")
    assert a != b


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path.joinpath("posbridge.toml").write_text("# the technician's own config\n")
    assert _init(tmp_path) == 2
    err = capsys.readouterr().err
    assert "posbridge.toml" in err and "already exist" in err and "Traceback" not in err
    assert tmp_path.joinpath("posbridge.toml").read_text() == "# the technician's own config\n"
    assert not tmp_path.joinpath("processing.password").exists()  # nothing half-written


def test_init_without_sandbox_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "init", "--dir", str(tmp_path)]) == 2
    assert "--sandbox" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_state_dir_apart_from_the_config(tmp_path: Path) -> None:
    assert _init(tmp_path / "etc", "--state-dir", str(tmp_path / "var")) == 0
    cfg = config.load(tmp_path / "etc" / "posbridge.toml")
    assert cfg.journal.path == tmp_path / "var" / "journal.sqlite"
    assert cfg.processing.password_file == tmp_path / "etc" / "processing.password"


def test_default_places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Root: /etc/posbridge and /var/lib/posbridge; anyone else: a directory they own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    user = config_init.layout(None)
    assert user.config_dir == user.state_dir == tmp_path / "posbridge"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = config_init.layout(None)
    assert (root.config, root.state_dir) == (
        Path("/etc/posbridge/posbridge.toml"),
        Path("/var/lib/posbridge"),
    )


def test_an_explicit_config_path_is_where_init_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "conf" / "register.toml"
    assert main(["--config", str(target), "config", "init", "--sandbox"]) == 0
    assert main(["--config", str(target), "config", "check"]) == 0
    assert (tmp_path / "conf" / "processing.password").is_file()


def test_a_bad_url_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init(tmp_path / "new", "--url", "http://processing.example/publicapi") == 2
    err = capsys.readouterr().err
    assert "--url: processing.url: plain http is allowed only for a sandbox on loopback" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_as_root_the_secrets_and_state_go_to_the_service_user(tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    etc, var = tmp_path / "etc", tmp_path / "var"
    assert _init(etc, "--state-dir", str(var), "--user", "nobody") == 0
    for secret in ("processing.password", "api.token"):
        st = (etc / secret).stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, 0o600)
    cfg = (etc / "posbridge.toml").stat()
    assert (cfg.st_uid, cfg.st_gid) == (0, nobody.pw_gid)  # root:posbridge 0640 on a register
    assert var.stat().st_uid == nobody.pw_uid  # the service writes its journal there


def test_a_missing_user_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(tmp_path, "--user", "no-such-user-posbridge") == 2
    assert "no-such-user-posbridge" in capsys.readouterr().err
