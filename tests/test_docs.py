"""The docs work when followed literally.

- posbridge.example.toml lists every key of every settings model (so they can't drift);
- `udev-rules` works with the example config, which names devices by their stable names;
- the install steps in docs/install.md are the lines of tools/install-steps.sh, and that
  script runs in a scratch root (host-changing lines skipped) to a config that passes
  `config check` and a balance against the real sandbox;
- the README links only what the repo holds and lists every command; the example
  cheque file is accepted by `posbridge purchase` against the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from bridge import config
from bridge.cli import COMMANDS, build_parser, main
from sandbox.server import SandboxServer
from tests.drivers.test_udev_rules import _udev_check, check_rules_file, parse_rule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "posbridge.example.toml"
INSTALL_MD = ROOT / "docs" / "install.md"
SCRIPT = ROOT / "tools" / "install-steps.sh"
README = ROOT / "README.md"
CHEQUE = ROOT / "docs" / "examples" / "cheque.json"

# ------------------------------------------------------------------ the example config


def _models_of(annotation: object) -> list[type[BaseModel]]:
    """The models a field holds: itself, a list of them, or any of a union (devices: one
    model per connection)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_of(args[0])
    if origin is list and args:
        return _models_of(args[0])
    if origin in (typing.Union, types.UnionType):
        return [model for arg in args for model in _models_of(arg)]
    return []


def expected_keys(model: type[BaseModel], table: str = "") -> set[tuple[str, str]]:
    """(table, key) for every leaf field of the config models, tables as TOML names them."""
    keys: set[tuple[str, str]] = set()
    for name, info in model.model_fields.items():
        subs = _models_of(info.annotation)
        for sub in subs:
            keys |= expected_keys(sub, f"{table}.{name}" if table else name)
        if not subs:
            keys.add((table, name))
    return keys


HEADER = re.compile(r"^(?:#\s*)?\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?\s*$")  # set or commented out
KEY = re.compile(r"^#?\s*([a-z_][a-z0-9_]*)\s*=\s*\S")


def example_keys(text: str) -> set[tuple[str, str]]:
    """(table, key) for every key the example shows, set or commented out."""
    found: set[tuple[str, str]] = set()
    table = ""
    for line in text.splitlines():
        if m := HEADER.match(line.strip()):
            table = m.group(1)
        elif table and (m := KEY.match(line.strip())):
            found.add((table, m.group(1)))
    return found


def test_the_example_lists_every_key_of_every_settings_model() -> None:
    expected = expected_keys(config.Config)
    assert ("barcodes", "weight_templates") in expected  # the walk reaches nested models
    assert ("barcodes.loyalty", "check") in expected
    assert ("devices", "by_id") in expected
    shown = example_keys(EXAMPLE.read_text(encoding="utf-8"))
    missing = sorted(f"{t}.{k}" for t, k in expected - shown)
    assert not missing, f"posbridge.example.toml does not show: {', '.join(missing)}"
    unknown = sorted(f"{t}.{k}" for t, k in shown - expected)
    assert not unknown, f"posbridge.example.toml shows keys no model has: {', '.join(unknown)}"


def example_with_secrets(tmp_path: Path) -> Path:
    """The example as a technician would have it after step 3: its secret files exist."""
    password, token = tmp_path / "processing.password", tmp_path / "api.token"
    for path, text in ((password, "secret-1\n"), (token, "t" * 48 + "\n")):
        path.write_text(text)
        path.chmod(0o600)
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("/etc/posbridge/processing.password", str(password))
    text = text.replace("/etc/posbridge/api.token", str(token))
    out = tmp_path / "posbridge.toml"
    out.write_text(text)
    out.chmod(0o640)
    return out


def test_udev_rules_work_with_the_example_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_with_secrets(tmp_path)
    assert 'port = "/dev/posbridge/scanner"' in cfg.read_text()  # the stable name it creates
    rules_file = tmp_path / "99-posbridge.rules"
    assert main(["--config", str(cfg), "udev-rules", "-o", str(rules_file)]) == 0
    rules = check_rules_file(rules_file.read_text())
    scanner = next(r for r in rules if ("SYMLINK", None, "+=", "posbridge/scanner") in r)
    assert ("SUBSYSTEM", None, "==", "tty") in scanner
    assert ("ATTRS", "idVendor", "==", "0c2e") in scanner
    assert not any(v.startswith("posbridge/") for k, _a, op, v in scanner if op == "==")
    symlinks = {v for r in rules for k, _a, op, v in r if k == "SYMLINK" and op == "+="}
    assert {"posbridge/scanner", "posbridge/msr", "posbridge/receipt"} <= symlinks
    checked = _udev_check(rules_file)  # udev itself loads them (skips where it cannot)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_udev_rules_match_by_id_when_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_with_secrets(tmp_path)
    text = cfg.read_text().replace(
        'usb = "0c2e:0b61"\n', 'by_id = "/dev/serial/by-id/usb-Honeywell_FAKE-if00"\n', 1
    )
    cfg.write_text(text)
    assert main(["--config", str(cfg), "udev-rules"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if 'SYMLINK+="posbridge/scanner"' in x)
    assert ("SYMLINK", None, "==", "serial/by-id/usb-Honeywell_FAKE-if00") in parse_rule(line)


def test_udev_rules_refuse_a_stable_name_alone_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_with_secrets(tmp_path)
    cfg.write_text(cfg.read_text().replace('usb = "0c2e:0b61"\n', "", 1))
    assert main(["--config", str(cfg), "udev-rules"]) == 2
    err = capsys.readouterr().err
    assert "'/dev/posbridge/scanner' is the link these rules create" in err
    assert "by_id" in err and "Traceback" not in err


# ------------------------------------------------------------------ install steps


def script_defaults() -> dict[str, str]:
    return dict(re.findall(r'^: "\$\{([A-Z_]+)=([^}]*)\}"', SCRIPT.read_text(), re.M))


def script_steps(env: dict[str, str]) -> list[str]:
    """The step lines of the script as the doc shows them: variables at their defaults."""
    text = SCRIPT.read_text()
    body = text[text.index("# step 1") :]
    out = []
    for line in body.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        line = re.sub(r"^host ", "", line)
        line = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: env.get(m.group(1), m.group(0)), line)
        out.append(" ".join(line.split()))
    return out


def doc_steps() -> list[str]:
    text = INSTALL_MD.read_text()
    begin = text.index("<!-- install-steps: begin")
    end = text.index("<!-- install-steps: end -->")
    blocks = re.findall(r"```sh\n(.*?)```", text[begin:end], re.S)
    return [
        " ".join(line.split())
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_install_doc_shows_exactly_the_script_lines() -> None:
    defaults = script_defaults()
    assert defaults["SUDO"] == "sudo" and defaults["ROOT"] == ""
    doc = doc_steps()
    assert doc == script_steps(defaults)
    # the walls a literal reader hit before
    assert "sudo install -d -o root -g posbridge -m 0750 /etc/posbridge" in doc
    assert not any("> /etc/" in line for line in doc), "a redirect runs without sudo"
    assert not any("/dev/stdin" in line and "read -rs" not in " ".join(doc) for line in doc)
    posbridge_runs = [
        line
        for line in doc
        if re.search(
            r"/bin/posbridge (journal|balance|"
            r"config check|devices)",
            line,
        )
    ]
    assert posbridge_runs and all(x.startswith("sudo -u posbridge ") for x in posbridge_runs)


def test_the_static_rules_are_named_apart_from_the_generated_ones() -> None:
    doc = INSTALL_MD.read_text()
    assert (ROOT / "udev" / "60-posbridge-classes.rules").is_file()
    assert not (ROOT / "udev" / "99-posbridge.rules").exists()
    assert "60-posbridge-classes.rules" in doc and "99-posbridge.rules" in doc


def _scratch_root(tmp_path: Path) -> Path:
    """What step 1 leaves: /opt/posbridge with the unit and a posbridge command."""
    root = tmp_path / "root"
    opt = root / "opt" / "posbridge"
    (opt / ".venv" / "bin").mkdir(parents=True)
    shutil.copytree(ROOT / "systemd", opt / "systemd")
    command = opt / ".venv" / "bin" / "posbridge"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} -m bridge "$@"\n')
    command.chmod(0o755)
    return root


def test_the_install_steps_run_in_a_scratch_root(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    root = _scratch_root(tmp_path)
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    etc, var = root / "etc" / "posbridge", root / "var" / "lib" / "posbridge"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ROOT": str(root),
        "SUDO": "",
        "AS_SERVICE": "",
        "SVC_USER": user,
        "GROUP": group,
        "SKIP_HOST": "1",
        "INIT_ARGS": f"--dir {etc} --state-dir {var} --url {sandbox_server.url}",
        "POSBRIDGE_CONFIG": str(etc / "posbridge.toml"),
    }
    done = subprocess.run(
        [bash, str(SCRIPT)],
        input="secret-1\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    skipped = [x for x in done.stderr.splitlines() if x.startswith("skipped (host): ")]
    assert any("useradd" in x for x in skipped) and any("systemctl" in x for x in skipped)
    assert f"{etc / 'posbridge.toml'}: OK" in done.stdout
    assert "500.00" in done.stdout  # step 6: the balance of the sandbox's test card

    for name in ("processing.password", "api.token"):
        assert stat.S_IMODE((etc / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert (etc / "processing.password").read_text() == "secret-1\n"
    unit = root / "etc" / "systemd" / "system" / "posbridge.service"
    assert unit.read_text() == (ROOT / "systemd" / "posbridge.service").read_text()
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # the unit as installed, its paths moved into the scratch root
        moved = tmp_path / "verify" / "posbridge.service"
        moved.parent.mkdir()
        moved.write_text(unit.read_text().replace("/opt/posbridge", str(root / "opt/posbridge")))
        verify = subprocess.run(
            [analyze, "verify", str(moved)], capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
    check = subprocess.run(
        [sys.executable, "-m", "bridge", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert config.load(etc / "posbridge.toml").journal.path.parent == var


# ------------------------------------------------------------------ README and examples


def test_the_readme_links_only_what_the_repo_holds() -> None:
    text = README.read_text()
    assert "../" not in text
    assert "docs/protocol.md" in text
    for ref in re.findall(r"`((?:docs|udev|systemd|tools|bench)/[^`\s]+)`", text):
        assert (ROOT / ref).exists(), ref
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    for needed in (
        "operationId",
        "operationDate",
        "Basic",
        "PurchaseOperationConflict",
        "NotUniqueOperationID",
        "without** an offset",
        "Offline",
    ):
        assert needed in protocol, needed


def test_the_readme_table_lists_every_command() -> None:
    import argparse

    table = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    cells = " ".join(line.replace("\\|", "/").split("|")[1] for line in table)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in COMMANDS:
        assert f"`{name}" in cells, f"README command table misses {name}"
        actions = [
            a for a in sub.choices[name]._actions if isinstance(a, argparse._SubParsersAction)
        ]
        for action in actions[:1]:
            for verb in action.choices:
                assert re.search(rf"`{name} [^`]*(?<![\w-]){verb}(?![\w-])", cells), (
                    f"README misses {name} {verb}"
                )


def test_the_example_cheque_is_accepted_by_purchase(
    sandbox_server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "posbridge.toml"
    assert (
        main(["config", "init", "--sandbox", "--dir", str(tmp_path), "--url", sandbox_server.url])
        == 0
    )
    capsys.readouterr()
    rc = main(
        [
            "--config",
            str(cfg),
            "purchase",
            "--card",
            "2775000000012",
            "--cheque",
            str(CHEQUE),
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    result = json.loads(out.out)
    assert result["accrued"] is not None
    assert "docs/examples/cheque.json" in README.read_text()
