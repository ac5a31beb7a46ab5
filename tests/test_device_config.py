"""`[[devices]]` in the config: the supported (kind, connection) pairs, settings per
connection and per kind, and the registrar's keys, as `posbridge config check` sees them."""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.cli import main
from bridge.config import SerialDevice, TcpDevice, UsbDevice
from bridge.devices import build
from bridge.supported_devices import CONNECTIONS, KINDS, SUPPORTED

PROCESSING = '[processing]\nurl = "https://p.example/api"\nlogin = "a"\npassword = "b"\n'

ADDRESS = {
    "serial": {"port": "/dev/ttyS0"},
    "usb": {"usb": "04b8:0e15"},
    "tcp": {"host": "192.0.2.10"},
    "file": {"port": "/dev/usb/lp0"},
    "hid": {"port": "/dev/input/event3"},
}
SUPPORTED_PAIRS = [(k, c) for k, conns in SUPPORTED.items() for c in conns]
UNSUPPORTED_PAIRS = [
    (k, c) for k, c in itertools.product(KINDS, CONNECTIONS) if c not in SUPPORTED[k]
]


def toml_entry(fields: dict[str, Any]) -> str:
    lines = ["[[devices]]"]
    for key, value in fields.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def service_keys(tmp_path: Path) -> str:
    """What `config check` needs besides the devices: a token and writable state files."""
    return (
        f'lock_file = "{tmp_path / "processing.lock"}"\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
        '[api]\ntoken = "a-long-random-token-0123456789"\n'
    )


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], *entries: dict[str, Any]) -> str:
    """`posbridge config check` on a config with these devices; its stderr ("" if it passed)."""
    path = tmp_path / "posbridge.toml"
    path.write_text(PROCESSING + service_keys(tmp_path) + "".join(toml_entry(e) for e in entries))
    path.chmod(0o600)
    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    assert (code == 0) == (err == "" or err.startswith("warning")), (code, out, err)
    return "" if code == 0 else err


def entry(kind: str, connection: str, **fields: Any) -> dict[str, Any]:
    return {"name": "dev", "kind": kind, "connection": connection, **ADDRESS[connection], **fields}


def test_the_table_is_what_the_issue_says() -> None:
    assert SUPPORTED == {
        "scanner": ("serial", "tcp", "file", "hid"),
        "card_reader": ("serial", "tcp", "file", "hid"),
        "printer": ("serial", "usb", "tcp", "file"),
        "registrar": ("serial", "tcp"),
    }
    assert len(UNSUPPORTED_PAIRS) == 6


@pytest.mark.parametrize(("kind", "connection"), SUPPORTED_PAIRS)
def test_config_check_accepts_every_supported_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, connection: str
) -> None:
    assert check(tmp_path, capsys, entry(kind, connection)) == ""


@pytest.mark.parametrize(("kind", "connection"), UNSUPPORTED_PAIRS)
def test_config_check_refuses_every_other_pair_saying_what_is_supported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, connection: str
) -> None:
    err = check(tmp_path, capsys, entry(kind, connection))
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    words = kind.replace("_", " ")
    supported = SUPPORTED[kind]  # type: ignore[index]
    listed = ", ".join(supported[:-1]) + f" or {supported[-1]}"
    assert problems == [
        f'  - devices[0]: a {words} cannot use connection = "{connection}"; {words}s use {listed}'
    ], err
    assert "Traceback" not in err


def test_printer_on_hid_and_scanner_on_usb_are_refused_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The two the service crashed or stayed offline on for ever: both said at once."""
    err = check(
        tmp_path,
        capsys,
        entry("printer", "hid", name="p"),
        entry("scanner", "usb", name="s"),
    )
    assert 'devices[0]: a printer cannot use connection = "hid"' in err
    assert 'devices[1]: a scanner cannot use connection = "usb"' in err


def test_the_builder_refuses_a_pair_the_config_never_would() -> None:
    made_up = UsbDevice.model_construct(name="s", kind="scanner", connection="usb", usb="0c2e:0b61")
    with pytest.raises(build.DeviceBuildError, match="scanners use serial, tcp, file or hid"):
        build.build_device(made_up)


@pytest.mark.parametrize(
    ("connection", "key", "value", "belongs"),
    [
        ("tcp", "baudrate", 19200, "serial"),
        ("tcp", "flow", "rtscts", "serial"),
        ("usb", "parity", "E", "serial"),
        ("serial", "host", "192.0.2.1", "tcp"),
        ("file", "tcp_port", 9100, "tcp"),
        ("tcp", "usb", "04b8:0e15", "serial and usb and hid"),
        ("usb", "port", "/dev/usb/lp0", "serial and file and hid"),
        ("file", "by_id", "/dev/ttyS0", "serial and hid"),
    ],
)
def test_a_key_of_another_connection_is_refused_by_name(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    connection: str,
    key: str,
    value: Any,
    belongs: str,
) -> None:
    err = check(tmp_path, capsys, entry("printer", connection, **{key: value}))
    line = next(x for x in err.splitlines() if f"devices[0].{key}:" in x)
    assert f"a setting of {belongs} devices, not of a {connection} device" in line
    assert "remove it or change connection" in line


@pytest.mark.parametrize(
    ("kind", "key", "value", "owner"),
    [
        ("scanner", "profile", "TM-T20II", "printers"),
        ("card_reader", "prefix", "X", "scanners"),
        ("printer", "suffix", "CRLF", "scanners and card readers"),
        ("printer", "password", 30, "registrars"),
        ("registrar", "paper_mm", 58, "printers"),
    ],
)
def test_a_key_of_another_kind_is_refused_not_ignored(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    value: Any,
    owner: str,
) -> None:
    err = check(tmp_path, capsys, entry(kind, "tcp", **{key: value}))
    assert f"devices[0].{key}: a setting of {owner}, not of a {kind.replace('_', ' ')}" in err


def test_a_wedge_takes_no_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = check(tmp_path, capsys, entry("scanner", "hid", suffix="LF"))
    assert "devices[0].suffix: a keyboard wedge ends each scan with Enter" in err


def test_typos_and_missing_addresses_still_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = check(
        tmp_path,
        capsys,
        {"name": "a", "kind": "printer", "connection": "tcp", "hots": "x"},
        {"name": "b", "kind": "printer", "connection": "usb"},
        {"name": "c", "kind": "printer", "connection": "parallel", "port": "/dev/lp0"},
        {"name": "d", "kind": "printer", "port": "/dev/lp0"},
    )
    assert "devices[0].hots: unknown key (check the spelling" in err
    assert "devices[0]: a tcp device needs `host`" in err
    assert "devices[1]: a usb device needs `usb`" in err
    assert (
        "devices[2].connection: expected one of serial, usb, tcp, file, hid (got 'parallel')" in err
    )
    assert "devices[3].connection: missing (required)" in err
    assert all(line.startswith(("posbridge config: ", "  - ")) for line in err.splitlines())


def test_serial_settings_are_kept_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config.parse(
        tomllib.loads(
            PROCESSING
            + toml_entry(
                entry(
                    "printer",
                    "serial",
                    baudrate=19200,
                    bytesize=7,
                    parity="E",
                    stopbits=2,
                    flow="rtscts",
                    usb="0403:6001:FT1",
                )
            )
        )
    )
    device = cfg.devices[0]
    assert isinstance(device, SerialDevice)
    assert build.serial_settings(device).short == "19200 7E2 rtscts"
    assert build.address(device) == "serial /dev/ttyS0 at 19200 7E2 rtscts"


# ---------------------------------------------------------------------- registrars


def test_registrar_defaults(tmp_path: Path) -> None:
    cfg = config.parse(tomllib.loads(PROCESSING + toml_entry(entry("registrar", "tcp"))))
    device = cfg.devices[0]
    assert isinstance(device, TcpDevice)
    assert (device.tcp_port, device.operator_password()) == (7778, 30)
    assert (device.tax_system.value, device.default_tax.value) == ("osn", "none")
    printer = config.parse(tomllib.loads(PROCESSING + toml_entry(entry("printer", "tcp"))))
    assert isinstance(printer.devices[0], TcpDevice) and printer.devices[0].tcp_port == 9100


def test_registrar_password_never_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posbridge.toml"
    fields = entry("registrar", "serial", password=271828, tax_system="usn_income")
    path.write_text(PROCESSING + toml_entry(fields) + '[receipt]\nregistrar = "dev"\n')
    path.chmod(0o600)
    assert main(["config", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "271828" not in shown
    device = tomllib.loads(shown)["devices"][0]
    assert device["password"] == "***" and device["tax_system"] == "usn_income"
    assert "profile" not in device and "suffix" not in device  # only a registrar's own keys
    cfg = config.load(path)
    assert "271828" not in repr(cfg) and "271828" not in str(config.redacted(cfg))
    assert cfg.receipt.registrar == "dev"
    # a wrong password is named, its value is not
    path.write_text(PROCESSING + toml_entry({**fields, "password": "2718x"}))
    err = check_file(path, capsys)
    assert "devices[0].password: expected a whole number (got ***)" in err
    assert "2718x" not in err
    assert "271828" not in caplog.text


def check_file(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["config", "check", str(path)]) != 0
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("receipt", "problem"),
    [
        (
            'registrar = "till"',
            "receipt.registrar: 'till' is not a configured registrar (registrars: dev)",
        ),
        (
            'registrar = "prn"',
            "receipt.registrar: 'prn' is not a configured registrar (registrars: dev)",
        ),
        ('printer = "dev"', "receipt.printer: 'dev' is not a configured printer (printers: prn)"),
    ],
)
def test_receipt_registrar_names_a_registrar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], receipt: str, problem: str
) -> None:
    path = tmp_path / "posbridge.toml"
    path.write_text(
        PROCESSING
        + toml_entry(entry("registrar", "tcp"))
        + toml_entry(entry("printer", "tcp", name="prn"))
        + f"[receipt]\n{receipt}\n"
    )
    path.chmod(0o600)
    assert problem in check_file(path, capsys)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("tax_system", "simplified", "expected 'osn', 'usn_income'"),
        ("default_tax", "vat18", "expected 'vat20', 'vat10'"),
        ("password", -1, "greater than or equal to 0"),
    ],
)
def test_registrar_values_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any, expected: str
) -> None:
    err = check(tmp_path, capsys, entry("registrar", "tcp", **{key: value}))
    assert re.search(rf"devices\[0\]\.{key}: .*{re.escape(expected)}", err), err


def test_the_example_config_still_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "posbridge.example.toml"
    data = tomllib.loads(example.read_text())
    data["processing"].pop("password_file", None)
    data["processing"]["password"] = "x"
    cfg = config.parse(data)
    assert {(d.kind, d.connection) for d in cfg.devices} >= {
        ("scanner", "serial"),
        ("card_reader", "hid"),
        ("printer", "usb"),
    }
