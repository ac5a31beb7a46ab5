"""The systemd unit lets the service make what a pass-through needs: a pty (DevicePolicy) and
its symlink under /run/posbridge (RuntimeDirectory).  systemd is not PID 1 here, so the
unit's device rules are checked against the very devices `PtyPort` opens, by their kernel
names in /proc/devices, as systemd's device cgroup resolves `char-NAME`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from bridge.config import RUN_DIR, PassthroughSettings
from drivers.virtual_port import PtyPort

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "posbridge.service"


def unit_values(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(), re.M)


def char_groups() -> dict[int, str]:
    """Major number -> driver name, from the "Character devices" part of /proc/devices."""
    out: dict[int, str] = {}
    for line in Path("/proc/devices").read_text().split("Block devices")[0].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def allowed(path: str, mode: str = "rw") -> bool:
    """Whether a DeviceAllow= line of the unit grants `mode` on the device node `path`."""
    groups = char_groups()
    name = groups.get(os.major(os.stat(path).st_rdev))
    for value in unit_values("DeviceAllow"):
        spec, _, rights = value.partition(" ")
        if not set(mode) <= set(rights or "rwm"):
            continue
        if spec == path or (name is not None and spec == f"char-{name}"):
            return True
    return False


def test_the_unit_allows_the_ptys_a_pass_through_creates(tmp_path: Path) -> None:
    assert unit_values("DevicePolicy") == ["closed"]
    port = PtyPort(tmp_path / "kkt", "kkt")
    try:
        assert allowed("/dev/ptmx")
        assert allowed(port.slave_path)  # /dev/pts/N, "char-pts"
    finally:
        port.close()
    assert not allowed("/dev/null")  # the check can say no: char-mem is not listed


def test_the_unit_makes_the_directory_of_the_default_links() -> None:
    [directory] = unit_values("RuntimeDirectory")
    assert Path("/run") / directory == RUN_DIR
    entry = PassthroughSettings(name="kkt", kind="registrar", device="real-kkt")
    assert entry.link_path() == RUN_DIR / "kkt"
    [mode] = unit_values("RuntimeDirectoryMode")
    assert int(mode, 8) & 0o005 == 0o005  # the POS's user reaches the links
