"""The Debian package's parts, checked fast before `make deb` builds it.

tools/deb-check.sh (CI, root) installs the built package and checks what only a real
install shows; these catch drift early: a dependency added to pyproject.toml but not to
the lock, a sandbox config the config model no longer accepts, a unit systemd rejects,
maintainer scripts that would start an unconfigured service or touch the journal on upgrade.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bridge import config
from tests.stand_ins import missing

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
LOCK = ROOT / "requirements.lock"
UNIT = ROOT / "systemd" / "posbridge.service"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def lock_pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) for every pin of a pip-compile --generate-hashes file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in text.splitlines():
        if m := PIN.match(line):
            name = canonicalize_name(m[1])
            assert name not in pins, f"{m[1]} pinned twice"
            pins[name] = (m[2], [])
        elif (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)) and name:
            pins[name][1].append(h[1])
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected line in the lock: {line!r}")
    return pins


def runtime_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


def test_lock_pins_every_runtime_dependency_within_pyprojects_range() -> None:
    pins = lock_pins(LOCK.read_text())
    linux = {"sys_platform": "linux", "platform_system": "Linux"}
    for req in runtime_requirements():
        if req.marker is not None and not req.marker.evaluate(linux):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, (
            f"{req.name} is in pyproject.toml but not in requirements.lock: make lock"
        )
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside pyproject's {req.specifier}"
        )


def test_every_pin_carries_hashes() -> None:
    pins = lock_pins(LOCK.read_text())
    assert len(pins) > 20  # the whole tree, not just the direct dependencies
    assert not [n for n, (_v, hashes) in pins.items() if not hashes]
    assert "pip" not in pins and "posbridge" not in pins


def test_lock_checker_rejects_a_pin_without_hash() -> None:
    bad = "httpx==0.27.0 \\\n    --hash=sha256:" + "a" * 64 + "\nfoo==1.0\n"
    pins = lock_pins(bad)
    assert pins["foo"] == ("1.0", []) and len(pins["httpx"][1]) == 1


def test_shipped_sandbox_config_is_valid_and_separate_from_the_real_journal() -> None:
    data = tomllib.loads((PACKAGING / "sandbox.toml").read_text())
    cfg = config.parse(data, "sandbox.toml")
    assert cfg.processing.url.startswith("http://127.0.0.1:8900/")
    assert cfg.api.token is None and str(cfg.api.token_file) == "/etc/posbridge/api.token"
    real = tomllib.loads((ROOT / "posbridge.example.toml").read_text())
    assert str(cfg.journal.path) != real["journal"]["path"]
    assert cfg.cheques_path() != Path(real["journal"]["path"]).with_name("cheques.sqlite")
    assert str(cfg.processing.lock_file) != real["processing"]["lock_file"]


def _script(name: str) -> str:
    return (PACKAGING / name).read_text()


@pytest.mark.parametrize("name", ["postinst", "prerm", "postrm"])
def test_maintainer_scripts_are_posix_sh(name: str) -> None:
    text = _script(name)
    assert text.startswith("#!/bin/sh\n") and "\nset -e\n" in text
    assert subprocess.run(["sh", "-n", str(PACKAGING / name)], check=False).returncode == 0
    if dash := shutil.which("dash"):
        assert subprocess.run([dash, "-n", str(PACKAGING / name)], check=False).returncode == 0


def test_postinst_never_enables_nor_starts_an_unconfigured_service() -> None:
    text = _script("postinst")
    assert "systemctl enable" not in text and "deb-systemd-helper" not in text
    # the one start: a service that was running before an upgrade (prerm left the marker)
    starts = [ln for ln in text.splitlines() if "systemctl start" in ln]
    assert len(starts) == 1
    assert "restart-after-upgrade" in text.split("systemctl start")[0].rsplit("if [", 1)[1]
    assert "touch /run/posbridge.restart-after-upgrade" in _script("prerm")


def test_journal_is_created_once_and_removed_only_on_purge() -> None:
    postinst = _script("postinst")
    assert "[ -d /var/lib/posbridge ] || install -d -o posbridge -g posbridge -m 0750" in postinst
    assert "chown -R" not in postinst and "chmod -R" not in postinst
    postrm = _script("postrm")
    before_purge, purge = postrm.split('if [ "$1" = purge ]; then', 1)
    assert "/var/lib/posbridge" not in before_purge.split("set -e", 1)[1]
    assert "rm -rf /var/lib/posbridge" in purge and "rm -rf /etc/posbridge" in purge


def test_control_template() -> None:
    fields = dict(
        line.split(": ", 1)
        for line in (PACKAGING / "control.in").read_text().splitlines()
        if line and not line.startswith(" ")
    )
    assert fields["Package"] == "posbridge"
    assert fields["Architecture"] == "@ARCH@" and fields["Version"] == "@VERSION@"
    depends = fields["Depends"].split(", ")
    assert "python@PYVER@" in depends and "@SHLIBS@" in depends
    assert "udev" not in depends and "systemd" not in depends  # containers may lack both


def test_build_script_installs_only_hashed_pins_at_the_final_path() -> None:
    text = (PACKAGING / "build-deb.sh").read_text()
    assert "--require-hashes" in text and "requirements.lock" in text
    assert "FINAL=/opt/posbridge/.venv" in text
    assert 'grep -rl -F "$WORK" "$STAGE"' in text  # no staging path left behind


def test_unit_runs_the_packaged_venv() -> None:
    unit = UNIT.read_text()
    for key in ("ExecStartPre", "ExecStart"):
        [value] = re.findall(rf"^{key}=(\S+)", unit, re.M)
        assert value == "/opt/posbridge/.venv/bin/posbridge", f"{key} runs {value}"
    assert "\nUser=posbridge\n" in unit and "\nGroup=posbridge\n" in unit


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze is not installed (apt-get install systemd)")
    # the packaged path does not exist before the package is installed: point the unit at the
    # project's own posbridge (tools/deb-check.sh verifies the installed unit as it is)
    posbridge = Path(sys.executable).with_name("posbridge")
    assert posbridge.exists(), posbridge
    unit = tmp_path / "posbridge.service"
    unit.write_text(UNIT.read_text().replace("/opt/posbridge/.venv/bin/posbridge", str(posbridge)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("RestartSec=", "RestartSecs="))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True, check=False
    )
    assert "Unknown key 'RestartSecs'" in result.stdout + result.stderr  # the check can fail


DEV_LOCK = ROOT / "requirements-dev.lock"


def test_dev_lock_pins_the_linters_and_test_tools_with_the_runtime_pins() -> None:
    """CI lints and tests with exactly these versions: a linter's new release cannot turn
    a green tree red until `make lock` moves the pin on purpose."""
    dev, runtime = lock_pins(DEV_LOCK.read_text()), lock_pins(LOCK.read_text())
    assert {n: v for n, (v, _h) in runtime.items()} == {
        n: dev[n][0] for n in runtime if n in dev
    }, "requirements-dev.lock disagrees with requirements.lock: make lock"
    assert set(runtime) <= set(dev), "requirements-dev.lock lacks runtime pins: make lock"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for req in map(Requirement, extras["test"] + extras["lint"]):
        name = canonicalize_name(req.name)
        assert name in dev, f"{req.name} is not pinned in requirements-dev.lock: make lock"
        assert req.specifier.contains(dev[name][0], prereleases=True), (
            f"requirements-dev.lock pins {req.name}=={dev[name][0]}, outside {req.specifier}"
        )
    assert {"ruff", "mypy", "import-linter", "pytest"} <= set(dev)
    assert not [n for n, (_v, hashes) in dev.items() if not hashes]
    assert "pip" not in dev and "posbridge" not in dev


def test_the_venv_is_installed_from_the_dev_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile[makefile.index("$(STAMP):") : makefile.index("\ndemo:")]
    assert "--require-hashes -r requirements-dev.lock" in stamp
    assert "--no-deps -e ." in stamp and "[dev]" not in stamp  # no unpinned resolution
    assert "requirements-dev.lock" in stamp.splitlines()[0]  # a new lock reinstalls
