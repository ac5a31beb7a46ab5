"""Generated and shipped udev rules: syntax, and never more access than group posbridge.

udev itself loads the files (tools/udev-check.sh: `udevadm verify` on systemd >= 253, a
sandboxed `udevadm test` on 252); the parser below checks every line everywhere: known
keys, operators that fit the key, quoted values, and the permissions each rule grants.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from drivers.discovery import DeviceSpec, NodeKind
from drivers.udev_rules import RuleError, generate_rules, rules_for_device
from tests.stand_ins import missing

STATIC_RULES = Path(__file__).resolve().parents[2] / "udev" / "60-posbridge-classes.rules"

MATCH_ONLY = {
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTRS",
    "TAGS",
    "CONST",
    "TEST",
    "PROGRAM",
    "RESULT",
}
EITHER = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"}
NEEDS_ATTR = {"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "SECLABEL"}
TOKEN = re.compile(
    r'\s*(?P<key>[A-Z]+)(?:\{(?P<attr>[^}"]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)'
)

SPECS = [
    DeviceSpec("receipt", NodeKind.USB, usb="04b8:0e15:ABC123"),
    DeviceSpec("kitchen", NodeKind.USB, usb="04b8:0e28"),
    DeviceSpec("scanner", NodeKind.SERIAL, port="/dev/serial/by-id/usb-Honeywell_FAKE02-if00"),
    DeviceSpec("display", NodeKind.SERIAL, port="/dev/ttyS0"),
    DeviceSpec("handheld", NodeKind.SERIAL, usb="0c2e:0b62:FAKE02"),
    DeviceSpec("netprinter", NodeKind.SERIAL, port="rfc2217://10.0.0.5:4000"),
    DeviceSpec("wedge", NodeKind.INPUT, usb="0c2e:0b61"),
    DeviceSpec("msr", NodeKind.INPUT, input_path="/dev/input/by-id/usb-MagTek-event-kbd"),
]


def parse_rule(line: str) -> list[tuple[str, str | None, str, str]]:
    """(key, attr, op, value) per pair; AssertionError naming what is wrong."""
    pairs, pos = [], 0
    while pos < len(line):
        m = TOKEN.match(line, pos)
        assert m, f"cannot parse at column {pos}: {line[pos : pos + 40]!r} in {line!r}"
        key, attr, op, value = m["key"], m["attr"], m["op"], m["value"]
        assert key in MATCH_ONLY | EITHER | ASSIGN_ONLY, f"unknown key {key} in {line!r}"
        assert (attr is not None) == (key in NEEDS_ATTR) or key in {"TEST", "IMPORT"}, (
            f"{key} {'needs' if key in NEEDS_ATTR else 'takes no'} {{attr}} in {line!r}"
        )
        if key in MATCH_ONLY:
            assert op in ("==", "!="), f"{key} only matches, got {op} in {line!r}"
        if key in ASSIGN_ONLY:
            assert op in ("=", "+=", "-=", ":="), f"{key} only assigns, got {op} in {line!r}"
        pairs.append((key, attr, op, value))
        pos = m.end()
    return pairs


def check_rules_file(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = parse_rule(line)
        assigned = {(k, a): v for k, a, op, v in pairs if op in ("=", ":=")}
        matches = [(k, a, v) for k, a, op, v in pairs if op == "=="]
        assert any(k == "SUBSYSTEM" for k, _a, _v in matches), f"no SUBSYSTEM match: {line!r}"
        assert assigned.get(("GROUP", None)) == "posbridge", f"GROUP is not posbridge: {line!r}"
        mode = assigned.get(("MODE", None))
        assert mode is not None and re.fullmatch(r"0[0-7][0-7]0", mode), f"mode {mode}: {line!r}"
        assert int(mode, 8) & 0o007 == 0, f"world access in {line!r}"
        assert not any(k == "OWNER" for k, *_ in pairs), line
        assert [v for k, _a, op, v in pairs if k == "SYMLINK" and op == "+="], (
            f"no SYMLINK+= in {line!r}"
        )
        rules.append(pairs)
    return rules


def test_generated_rules_parse_and_grant_only_the_group() -> None:
    text = generate_rules(SPECS)
    rules = check_rules_file(text)
    symlinks = [v for pairs in rules for k, _a, op, v in pairs if k == "SYMLINK" and op == "+="]
    assert symlinks == [
        "posbridge/receipt",
        "posbridge/receipt-lp",
        "posbridge/kitchen",
        "posbridge/kitchen-lp",
        "posbridge/scanner",
        "posbridge/display",
        "posbridge/handheld",
        "posbridge/wedge",
        "posbridge/msr",
    ]
    assert "# netprinter: network port rfc2217://10.0.0.5:4000, no device node" in text


def test_usb_rule_matches_vid_pid_serial_on_the_device_node() -> None:
    [_comment, device, lp] = rules_for_device(SPECS[0])
    assert parse_rule(device)[:5] == [
        ("SUBSYSTEM", None, "==", "usb"),
        ("ENV", "DEVTYPE", "==", "usb_device"),
        ("ATTR", "idVendor", "==", "04b8"),
        ("ATTR", "idProduct", "==", "0e15"),
        ("ATTR", "serial", "==", "ABC123"),
    ]
    assert ("ATTRS", "serial", "==", "ABC123") in parse_rule(lp)
    assert ("KERNEL", None, "==", "lp[0-9]*") in parse_rule(lp)


def test_serial_rules_by_link_kernel_name_and_usb() -> None:
    by_id, kernel, usb = (parse_rule(rules_for_device(s)[1]) for s in SPECS[2:5])
    assert ("SYMLINK", None, "==", "serial/by-id/usb-Honeywell_FAKE02-if00") in by_id
    assert ("KERNEL", None, "==", "ttyS0") in kernel
    assert ("ATTRS", "idProduct", "==", "0b62") in usb and ("SUBSYSTEM", None, "==", "tty") in usb


def test_input_rules_hide_the_wedge_from_the_desktop() -> None:
    for spec in SPECS[6:]:
        pairs = parse_rule(rules_for_device(spec)[1])
        assert ("ENV", "LIBINPUT_IGNORE_DEVICE", "=", "1") in pairs
        assert ("ENV", "ID_INPUT_KEYBOARD", "=", "") in pairs
        assert ("KERNEL", None, "==", "event*") in pairs
    by_usb = parse_rule(rules_for_device(SPECS[6])[1])
    assert ("ENV", "ID_INPUT_KEYBOARD", "==", "1") in by_usb  # only the keyboard node


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (DeviceSpec("receipt", NodeKind.USB, usb="04b8:0e15:AB*"), "'AB\\*' holds characters"),
        (DeviceSpec("bad name", NodeKind.USB, usb="04b8:0e15"), "'bad name': use letters"),
        (DeviceSpec("p", NodeKind.SERIAL, port="/tmp/ttyFAKE"), "no udev rule can name it"),
        (DeviceSpec("w", NodeKind.INPUT, input_path="/dev/input/mouse0"), "no udev rule"),
    ],
)
def test_unsafe_or_unnameable_devices_are_refused(spec: DeviceSpec, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        generate_rules([spec])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(RuleError, match="must be unique"):
        generate_rules([SPECS[0], SPECS[0]])


def test_shipped_static_rules_parse_and_grant_only_the_group() -> None:
    rules = check_rules_file(STATIC_RULES.read_text())
    assert len(rules) >= 6
    subsystems = {v for pairs in rules for k, _a, _op, v in pairs if k == "SUBSYSTEM"}
    assert subsystems == {"usb", "usbmisc", "tty", "input"}


UDEV_CHECK = Path(__file__).resolve().parents[2] / "tools" / "udev-check.sh"


def _udev_check(*files: Path) -> subprocess.CompletedProcess[str]:
    """tools/udev-check.sh on `files`; a skip only where udev cannot be asked and CI is not."""
    result = subprocess.run(
        ["bash", str(UDEV_CHECK), *map(str, files)], capture_output=True, text=True, check=False
    )
    if result.returncode == 77:  # CI installs udev and runs as root: there this fails
        missing(f"{result.stdout.strip()}; the parser above checked the rules")
    return result


def test_udev_itself_accepts_the_rules(tmp_path: Path) -> None:
    generated = tmp_path / "99-posbridge-local.rules"
    generated.write_text(generate_rules(SPECS))
    result = _udev_check(generated, STATIC_RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_udev_itself_rejects_a_broken_rule(tmp_path: Path) -> None:
    good = tmp_path / "60-good.rules"
    good.write_text(generate_rules(SPECS[:1]))
    bad = tmp_path / "61-bad.rules"
    bad.write_text('# a typo udev must catch\nSUBSYTEM=="tty", GROUP="posbridge", MODE="0660"\n')
    result = _udev_check(good, bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{bad}:2 " in result.stdout and "SUBSYTEM" in result.stdout, result.stdout
    assert not re.search(rf"{re.escape(str(good))}:\d+ ", result.stdout), result.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('SUBSYSTEM=="tty", GROUP="posbridge", MODE="0666", SYMLINK+="posbridge/x"', "mode 0666"),
        ('SUBSYSTEM=="tty", GROUP="posbridge", MODE="0660"', "no SYMLINK"),
        ('SUBSYSTEM=="tty", GROUP=posbridge, MODE="0660", SYMLINK+="posbridge/x"', "cannot parse"),
        ('SUBSYTEM=="tty", GROUP="posbridge", MODE="0660", SYMLINK+="posbridge/x"', "unknown key"),
        ('SUBSYSTEM="tty", GROUP="posbridge", MODE="0660", SYMLINK+="posbridge/x"', "only matches"),
        (
            'SUBSYSTEM=="tty", GROUP=="posbridge", MODE="0660", SYMLINK+="posbridge/x"',
            "only assigns",
        ),
        (
            'SUBSYSTEM=="tty", ATTRS=="x", GROUP="posbridge", MODE="0660", SYMLINK+="posbridge/x"',
            "needs",
        ),
        ('SUBSYSTEM=="tty", GROUP="users", MODE="0660", SYMLINK+="posbridge/x"', "not posbridge"),
    ],
)
def test_the_checker_itself_rejects_bad_rules(line: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_rules_file(line)


# ------------------------------------------------------ stable names: rules from the identity


def test_a_stable_name_is_matched_by_the_devices_usb_identity() -> None:
    serial = DeviceSpec(
        "scanner", NodeKind.SERIAL, port="/dev/posbridge/scanner", usb="0c2e:0b61:SN42"
    )
    wedge = DeviceSpec("wedge", NodeKind.INPUT, input_path="/dev/posbridge/wedge", usb="05e0:1200")
    text = generate_rules([serial, wedge])
    check_rules_file(text)
    assert "/dev/posbridge/" not in text.replace("# ", "")  # never matched on its own link
    by_serial = parse_rule(rules_for_device(serial)[1])
    assert ("ATTRS", "idVendor", "==", "0c2e") in by_serial
    assert ("ATTRS", "serial", "==", "SN42") in by_serial
    assert ("SYMLINK", None, "+=", "posbridge/scanner") in by_serial
    by_wedge = parse_rule(rules_for_device(wedge)[1])
    assert ("ATTRS", "idProduct", "==", "1200") in by_wedge
    assert ("ENV", "ID_INPUT_KEYBOARD", "==", "1") in by_wedge


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            DeviceSpec("scanner", NodeKind.SERIAL, port="/dev/posbridge/scanner"),
            r'is the link these rules create.*usb = "VID:PID\[:serial\]" or by_id',
        ),
        (
            DeviceSpec("msr", NodeKind.INPUT, input_path="/dev/posbridge/msr"),
            "is the link these rules create",
        ),
        (
            DeviceSpec("scanner", NodeKind.SERIAL, port="/dev/posbridge/other", usb="0c2e:0b61"),
            r"not the name these rules create for it \(/dev/posbridge/scanner\)",
        ),
    ],
)
def test_a_stable_name_alone_is_refused_with_the_fix(spec: DeviceSpec, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        generate_rules([spec])
