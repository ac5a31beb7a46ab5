"""The register's configuration: one TOML file, validated before anything starts.

A technician edits this file by hand on a register with no IDE, so every problem is
reported at once, one line each, naming the key, the bad value and what is expected;
never a traceback.  Secrets (processing password, API token) are `SecretStr`: they
do not appear in reprs, errors or `config show`.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Secret,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.barcodes import BarcodeSettings
from bridge.supported_devices import (
    ALL_KIND_KEYS,
    CONNECTIONS,
    DEFAULT_TCP_PORT,
    KIND_KEYS,
    KINDS,
    NOT_ON,
    PLURAL,
    Connection,
    DeviceKind,
    unsupported_problem,
)
from drivers.fiscal.base import TaxRate, TaxSystem

DEFAULT_PATH = Path("/etc/posbridge/posbridge.toml")
ENV_VAR = "POSBRIDGE_CONFIG"
SECRET_KEYS = frozenset({"password", "token"})
REDACTED = "***"

PositiveSeconds = Annotated[float, Field(gt=0, le=600)]


class ConfigError(Exception):
    """The config cannot be used; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def render(self) -> str:
        head = f"configuration {self.source} has {len(self.problems)} problem(s):"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


# ------------------------------------------------------------ checks across keys
# Each works on raw data (a dict that may hold anything) and on a model's dump alike.


def _section(data: Any, name: str) -> dict[str, Any]:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _password_problem(p: dict[str, Any]) -> str | None:
    has_inline, has_file = p.get("password") is not None, p.get("password_file") is not None
    if has_inline and has_file:
        return (
            "processing: both password and password_file are set; keep one"
            " (password_file, mode 0600, is better)"
        )
    if not has_inline and not has_file:
        return (
            "processing.password_file: missing; set exactly one of processing.password or"
            " processing.password_file (a 0600 file holding only the password)"
        )
    return None


def _probe_problem(j: dict[str, Any]) -> str | None:
    lo, hi = j.get("probe_min_seconds", 2.0), j.get("probe_max_seconds", 60.0)
    if isinstance(lo, int | float) and isinstance(hi, int | float) and hi < lo:
        return (
            f"journal.probe_max_seconds: {hi!r} is below journal.probe_min_seconds {lo!r};"
            " make the maximum at least the minimum"
        )
    return None


_ADDRESS = {"serial": "port", "file": "port", "hid": "port", "usb": "usb", "tcp": "host"}


def _address_problem(d: dict[str, Any]) -> str | None:
    connection = d.get("connection")
    key = _ADDRESS.get(connection) if isinstance(connection, str) else None
    if key is not None and d.get(key) is None:
        return f"a {connection} device needs `{key}`"
    return None


def _device_problems(d: dict[str, Any]) -> list[str]:
    """A device's checks across keys: its address, its (kind, connection) pair, and keys
    that belong to another kind of device (refused: silently ignoring them is how a
    setting got lost before).  Each line starts with ": " or ".KEY: " after `devices[i]`."""
    out = []
    if problem := _address_problem(d):
        out.append(f": {problem}")
    kind, connection = d.get("kind"), d.get("connection")
    if isinstance(kind, str) and isinstance(connection, str):
        if problem := unsupported_problem(kind, connection):
            out.append(f": {problem}")
    if kind in KINDS:
        mine: DeviceKind = kind
        for key in sorted(k for k in d if k in ALL_KIND_KEYS and k not in KIND_KEYS[mine]):
            owners = " and ".join(PLURAL[k] for k in KINDS if key in KIND_KEYS[k])
            out.append(
                f".{key}: a setting of {owners}, not of a {mine.replace('_', ' ')}; remove it"
            )
        if connection in CONNECTIONS:
            for key in sorted(NOT_ON.get((mine, connection), frozenset()) & d.keys()):
                out.append(
                    f".{key}: a keyboard wedge ends each scan with Enter, so {connection}"
                    f" devices take no {key}; remove it"
                )
    return out


def _names_problems(data: dict[str, Any]) -> list[str]:
    devices = data.get("devices")
    devices = [d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else []
    out = []
    names = [d.get("name") for d in devices if isinstance(d.get("name"), str)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(f"devices: names must be unique; repeated: {', '.join(dupes)}")
    for key, kind in (("printer", "printer"), ("registrar", "registrar")):
        wanted = _section(data, "receipt").get(key)
        if wanted is None:
            continue
        named = [str(d.get("name")) for d in devices if d.get("kind") == kind]
        if wanted not in named:
            out.append(
                f"receipt.{key}: {wanted!r} is not a configured {kind}"
                f" ({kind}s: {', '.join(named) or 'none'}); name a [[devices]] entry with"
                f' kind = "{kind}", or remove receipt.{key}'
            )
    out.extend(_passthrough_problems(data, devices))
    return out


def _passthrough_key_problems(e: dict[str, Any]) -> list[str]:
    """Keys of another kind of pass-through, and `link` beside `listen`."""
    kind = e.get("kind")
    out: list[str] = []
    if kind in PASSTHROUGH_KINDS:
        # a model's dump holds every key with its default: only a value set counts
        defaults = {k: PassthroughSettings.model_fields[k].default for k in PASSTHROUGH_KEYS}
        for key in sorted(
            k for k in e if PASSTHROUGH_KEYS.get(k, kind) != kind and e[k] != defaults[k]
        ):
            out.append(
                f".{key}: only a {PASSTHROUGH_KEYS[key]} pass-through reads it, this one is a"
                f" {kind}; remove it"
            )
    if e.get("link") is not None and e.get("listen") is not None:
        out.append(": set `link` (a pty) or `listen` (TCP), not both")
    return out


def _passthrough_problems(data: dict[str, Any], devices: list[dict[str, Any]]) -> list[str]:
    """Each `[[passthrough]]` stands in front of one real device of its own kind, and no
    two share a name, a device or a link (each would steal the other's bytes)."""
    entries = data.get("passthrough")
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    kinds = {str(d.get("name")): d.get("kind") for d in devices}
    out: list[str] = []
    seen: dict[str, dict[str, str]] = {"name": {}, "device": {}, "link": {}}
    for i, e in enumerate(entries):
        out.extend(f"passthrough[{i}]{problem}" for problem in _passthrough_key_problems(e))
        kind, device = e.get("kind"), e.get("device")
        if isinstance(device, str) and kind in PASSTHROUGH_KINDS:
            if device not in kinds:
                out.append(
                    f"passthrough[{i}].device: {device!r} is not a [[devices]] entry"
                    f" ({', '.join(kinds) or 'none configured'}); name the real {kind}"
                )
            elif kinds[device] != kind:
                out.append(
                    f"passthrough[{i}].device: {device!r} is a {kinds[device]}, not a {kind};"
                    f" name a [[devices]] entry with kind = {kind!r}"
                )
        name = e.get("name")
        link = e.get("link") or (f"{RUN_DIR}/{name}" if e.get("listen") is None else None)
        for key, value in (("name", name), ("device", device), ("link", link)):
            if value is None:
                continue
            text = str(value)
            if text in seen[key]:
                out.append(
                    f"passthrough[{i}].{key}: {text!r} is used by {seen[key][text]} too;"
                    " each pass-through needs its own"
                )
            else:
                seen[key][text] = f"passthrough[{i}]"
    receipt = _section(data, "receipt")
    for key in ("printer", "registrar"):
        wanted = receipt.get(key)
        if isinstance(wanted, str) and wanted in seen["device"]:
            out.append(
                f"receipt.{key}: {wanted!r} stands behind {seen['device'][wanted]}: the POS"
                f" prints on it through the pass-through; remove receipt.{key}"
            )
    return out


def _model_problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    out = []
    processing = data.get("processing")
    if isinstance(processing, dict) and (problem := _password_problem(processing)):
        out.append(problem)
    if problem := _probe_problem(_section(data, "journal")):
        out.append(problem)
    devices = data.get("devices")
    for i, d in enumerate(devices if isinstance(devices, list) else []):
        if isinstance(d, dict):
            out.extend(f"devices[{i}]{problem}" for problem in _device_problems(d))
    out.extend(_names_problems(data))
    return out


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _read_secret_file(path: Path, key: str) -> str:
    """The secret in `path`; ValueError (one line: what and how to fix) if unusable."""
    if path.is_dir():
        raise ValueError(f"{key} {path} is a directory; give the file holding the secret")
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ValueError(
            f"{key} {path} does not exist; create it (mode 0600) holding only"
            " the secret, or fix the path"
        ) from None
    except OSError as exc:
        raise ValueError(
            f"cannot read {key} {path}: {exc.strerror}; it must be readable by"
            " the user posbridge runs as (mode 0600, owned by that user)"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{key} {path} is not UTF-8 text") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ValueError(
            f"{key} {path} is readable by group or others (mode {mode:04o}); run: chmod 0600 {path}"
        )
    if not text:
        raise ValueError(f"{key} {path} is empty; write the secret into it")
    return text


class ProcessingSettings(Section):
    url: str = Field(description="base URL of the processing API")
    login: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    register_id: str = Field(default="register", min_length=1, max_length=64)
    cashier: str | None = None
    connect_timeout: PositiveSeconds = 3.0
    read_timeout: PositiveSeconds = 10.0
    # the whole request, connect to last byte: read_timeout alone is per read, and a
    # processing trickling a byte a second would hold the till for ever
    deadline: PositiveSeconds = 8.0
    max_answer_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30)
    ca_file: Path | None = None
    lock_file: Path = Path("/var/lib/posbridge/processing.lock")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "expected an https:// URL such as https://processing.example/publicapi"
            )
        if parts.username or parts.password:
            raise ValueError("put the login and password in their own keys, not in the URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("plain http is allowed only for a sandbox on loopback; use https")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        problem = _password_problem(self.model_dump())
        if problem:
            raise ValueError(problem)
        return self

    def secret_password(self) -> str:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:  # the model refuses this; -O must not let it through
            raise ValueError("set processing.password or processing.password_file")
        return _read_secret_file(self.password_file, "password_file")


class JournalSettings(Section):
    path: Path = Path("/var/lib/posbridge/journal.sqlite")
    max_pending: int = Field(default=10_000, ge=1)
    max_age_hours: float = Field(default=72.0, gt=0)
    retention_days: float = Field(default=7.0, ge=0)
    probe_min_seconds: PositiveSeconds = 2.0
    probe_max_seconds: PositiveSeconds = 60.0

    @model_validator(mode="after")
    def _probe_bounds(self) -> Self:
        problem = _probe_problem(self.model_dump())
        if problem:
            raise ValueError(problem)
        return self


class ChequeSettings(Section):
    """The register's open cheques: kept on disk, bounded, cancelled when abandoned."""

    path: Path | None = Field(
        default=None, description="default: cheques.sqlite beside the journal"
    )
    max_open: int = Field(default=200, ge=1, le=10_000)
    expire_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    keep_closed_days: float = Field(default=14.0, ge=0, le=3650)


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="larger request bodies are refused (413)",
    )
    header_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="seconds a client has to send a request's headers, and again its body",
    )
    max_connections: int = Field(
        default=256,
        ge=4,
        le=10_000,
        description=("open connections at most; past it the one idle longest is closed"),
    )

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        if value not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the POS API listens on loopback only (127.0.0.1 or ::1)")
        return value

    def secret_token(self) -> str | None:
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is not None:
            return _read_secret_file(self.token_file, "token_file")
        return None


class ReceiptSettings(Section):
    language: Literal["ru", "en"] = "ru"
    columns: Literal[32, 42, 48] = 42
    printer: str | None = Field(default=None, description="name of a [[devices]] printer")
    registrar: str | None = Field(
        default=None, description="name of the [[devices]] registrar that prints fiscal receipts"
    )


# ---------------------------------------------------------------------- devices
# One model per connection, each holding only what that connection needs: a key of
# another connection is refused with its name, never ignored.  What each kind may use
# and which keys belong to which kind: bridge.supported_devices.

_USB_ID = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:\S+)?$")


def _usb_id(value: str) -> str:
    if not _USB_ID.match(value):
        raise ValueError(
            "expected VID:PID or VID:PID:SERIAL, 4 hex digits each and a serial number"
            " without spaces, e.g. 04b8:0e15 or 04b8:0e15:ABC123 (`posbridge devices` shows it)"
        )
    return value


UsbIdText = Annotated[str, AfterValidator(_usb_id), Field(description="VID:PID[:serial]")]
# what `udev-rules` matches when `port` is the /dev/posbridge/NAME link it creates
ById = Annotated[
    str,
    Field(
        pattern=r"^/dev/((serial|input)/by-(id|path)/\S+|tty[A-Za-z]+[0-9]+|input/event[0-9]+)$",
        description="the device's own path: /dev/serial/by-id/..., /dev/input/by-id/..., "
        "by-path, or a kernel name such as /dev/ttyS0",
    ),
]
RegistrarPassword = Secret[Annotated[int, Field(ge=0, le=0xFFFFFFFF)]]


class DeviceBase(Section):
    """What every device has, and the keys of each kind (`supported.KIND_KEYS` says
    which kind reads which; a key of another kind is refused)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    kind: DeviceKind
    # scanners and card readers
    suffix: Literal["CR", "CRLF", "LF", "TAB"] = "CR"
    prefix: str = ""
    # printers
    profile: str | None = None
    codepage: str = "CP866"
    codepage_slot: int | None = Field(default=None, ge=0, le=255)
    paper_mm: Literal[58, 80] = 80
    # registrars: the operator password is a secret (never logged, *** in `config show`)
    password: RegistrarPassword = Field(default=RegistrarPassword(30))
    tax_system: TaxSystem = TaxSystem.OSN
    default_tax: TaxRate = TaxRate.NONE

    @model_validator(mode="after")
    def _across_keys(self) -> Self:
        given: dict[str, Any] = dict.fromkeys(self.model_fields_set, True)
        given.update(kind=self.kind, connection=getattr(self, "connection", None))
        if problems := _device_problems(given):  # `parse` words them from the raw data
            raise ValueError("; ".join(problems))
        return self

    def operator_password(self) -> int:
        return self.password.get_secret_value()


class SerialDevice(DeviceBase):
    """A serial port: a tty, /dev/serial/by-id/..., /dev/posbridge/NAME or a pyserial URL."""

    connection: Literal["serial"]
    port: str = Field(description="serial port, or a pyserial URL such as rfc2217://host:port")
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    flow: Literal["none", "rtscts", "xonxoff"] = "none"
    usb: UsbIdText | None = Field(default=None, description="identity for udev-rules")
    by_id: ById | None = None


class UsbDevice(DeviceBase):
    """A USB device driven through libusb (printers), named by VID:PID[:serial]."""

    connection: Literal["usb"]
    usb: UsbIdText


class TcpDevice(DeviceBase):
    """A device on the network: raw TCP to host:tcp_port (9100 printers, 7778 registrars)."""

    connection: Literal["tcp"]
    host: str = Field(min_length=1)
    tcp_port: int = Field(default=9100, ge=1, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _kind_port(cls, data: Any) -> Any:
        kind = data.get("kind") if isinstance(data, dict) else None
        if isinstance(data, dict) and "tcp_port" not in data and kind in DEFAULT_TCP_PORT:
            return {**data, "tcp_port": DEFAULT_TCP_PORT[kind]}
        return data


class FileDevice(DeviceBase):
    """A device node or plain file (/dev/usb/lp0, a FIFO, a capture file)."""

    connection: Literal["file"]
    port: str = Field(description="path of the device node or file")


class HidDevice(DeviceBase):
    """A keyboard-wedge device read through evdev (and grabbed from the desktop)."""

    connection: Literal["hid"]
    port: str = Field(description="input device: /dev/input/by-id/...-event-kbd")
    usb: UsbIdText | None = Field(default=None, description="identity for udev-rules")
    by_id: ById | None = None


DEVICE_MODELS: dict[Connection, type[DeviceBase]] = {
    "serial": SerialDevice,
    "usb": UsbDevice,
    "tcp": TcpDevice,
    "file": FileDevice,
    "hid": HidDevice,
}
DeviceSettings = Annotated[
    SerialDevice | UsbDevice | TcpDevice | FileDevice | HidDevice,
    Field(discriminator="connection"),
]
_DEVICE = TypeAdapter[DeviceSettings](DeviceSettings)


def parse_device(data: dict[str, Any]) -> DeviceSettings:
    """One `[[devices]]` entry on its own (pydantic's ValidationError if it is wrong)."""
    return _DEVICE.validate_python(data)


PassthroughKind = Literal["registrar", "printer", "scanner"]
PASSTHROUGH_KINDS: tuple[PassthroughKind, ...] = ("registrar", "printer", "scanner")
RUN_DIR = Path("/run/posbridge")  # systemd's RuntimeDirectory=posbridge
# keys only one kind of pass-through reads; on another kind they are refused, not ignored
PASSTHROUGH_KEYS: dict[str, PassthroughKind] = {
    "window": "printer",
    "pass_cards": "scanner",
    "settle_budget": "registrar",
    "catalog": "registrar",
}


class PassthroughSettings(Section):
    """A virtual port the POS opens in front of a real [[devices]] entry (docs/passthrough.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    kind: PassthroughKind
    device: str = Field(description="name of the real [[devices]] entry of the same kind")
    link: Path | None = Field(
        default=None, description="pty symlink the POS opens (default /run/posbridge/NAME)"
    )
    listen: str | None = Field(
        default=None,
        pattern=r"^[^\s:]+:[0-9]{1,5}$",
        description="HOST:PORT to listen on for the POS instead of a pty",
    )
    pty_mode: int = Field(default=0o660, ge=0, le=0o777, description="the pty's permissions")
    pty_group: str | None = Field(
        default=None, description="group the pty is given (the POS user's), e.g. posbridge"
    )
    window: PositiveSeconds = Field(
        default=10.0, description="printer: seconds a confirmed cheque waits for its printout"
    )
    pass_cards: bool = Field(default=False, description="scanner: pass card scans to the POS too")
    settle_budget: float = Field(
        default=2.0, gt=0, le=30, description="registrar: seconds processing gets at a close"
    )
    catalog: Path | None = Field(
        default=None, description="registrar: the catalogue file pushed, to match items by"
    )

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, port = value.rsplit(":", 1)
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"the port of {value!r} is not 1..65535")
        # the virtual port has no authentication: it is for the POS on this machine only
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(
                f"{value!r} is not on loopback; use 127.0.0.1:PORT (the virtual port has no "
                "authentication, so it is offered to the POS on this machine only)"
            )
        return value

    @field_validator("pty_mode")
    @classmethod
    def _not_world_writable(cls, value: int) -> int:
        if value & 0o002:
            raise ValueError(
                f"{oct(value)} lets every user write to the POS's port; grant a group "
                "instead (pty_group, mode 0o660)"
            )
        return value

    @model_validator(mode="after")
    def _kind_keys(self) -> Self:
        given: dict[str, Any] = dict.fromkeys(self.model_fields_set, True)
        given["kind"] = self.kind
        if problems := _passthrough_key_problems(given):  # `parse` words them from raw data
            raise ValueError("; ".join(problems))
        return self

    def link_path(self) -> Path | None:
        """Where the pty's symlink goes; None for a TCP listener."""
        if self.listen is not None:
            return None
        return self.link or RUN_DIR / self.name

    def listen_address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, port = self.listen.rsplit(":", 1)
        return host, int(port)


class Config(Section):
    processing: ProcessingSettings
    barcodes: BarcodeSettings = BarcodeSettings()
    journal: JournalSettings = JournalSettings()
    cheques: ChequeSettings = ChequeSettings()
    api: ApiSettings = ApiSettings()
    receipt: ReceiptSettings = ReceiptSettings()
    devices: list[DeviceSettings] = Field(default_factory=list)
    passthrough: list[PassthroughSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> Self:
        problems = _names_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def cheques_path(self) -> Path:
        """The cheque file: configured, else beside the journal (same directory, same care)."""
        return self.cheques.path or self.journal.path.with_name("cheques.sqlite")

    def device(self, name: str) -> DeviceSettings:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


# ---------------------------------------------------------------------- loading


def resolve_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def load(path: str | os.PathLike[str] | None = None, *, service: bool = False) -> Config:
    """The config at `path`; with `service`, also everything `posbridge run` needs."""
    source = resolve_path(path)
    return parse(read_raw(source), str(source), service=service)


def read_raw(source: Path) -> dict[str, Any]:
    """The file's TOML as data, or ConfigError saying why it cannot be read."""
    try:
        # non-blocking open and a look before reading: a FIFO or a device would hang us
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise ConfigError(
                str(source),
                [
                    "is a directory; give the config file itself"
                    if stat.S_ISDIR(mode)
                    else "is not a regular file; give the config file itself"
                ],
            )
        with os.fdopen(fd, "rb") as f:
            raw = f.read(1 << 20)
            if f.read(1):
                raise ConfigError(str(source), ["is over 1 MiB; is it the config file?"])
    except FileNotFoundError:
        raise ConfigError(
            str(source), [f"file not found (use --config FILE or {ENV_VAR})"]
        ) from None
    except OSError as exc:
        raise ConfigError(
            str(source),
            [
                f"cannot read: {exc.strerror}; it must be readable by"
                f" the user posbridge runs as ({_user()})"
            ],
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(source), [f"not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source), [f"TOML syntax error: {exc}"]) from None


def load_optional(path: str | os.PathLike[str] | None = None) -> Config | None:
    """The config given with --config, else the resolved file if it exists, else None.

    For tools that also work on a bare machine (decode, devices); a file given with
    --config that is missing or wrong is still an error.
    """
    resolved = resolve_path(path)
    if path is None and not resolved.exists():
        return None
    return load(resolved)


def parse(data: dict[str, Any], source: str = "<config>", *, service: bool = False) -> Config:
    """The validated config, or ConfigError listing every problem found in one pass.

    Field errors, the checks across keys (run over the raw data, so they are reported
    even when a field is wrong) and the files the config names all go in one list.
    With `service`, also what `run` needs beyond that: the API token, and the journal,
    cheque and lock files it creates.
    """
    problems: list[str] = []
    cfg: Config | None = None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, data))
        problems.extend(_model_problems(data))
    problems.extend(file_problems(data, service=service))
    problems = list(dict.fromkeys(problems))  # the same problem found twice is said once
    if problems or cfg is None:
        raise ConfigError(source, problems or ["invalid configuration"])
    return cfg


def describe_error(err: Any) -> str:
    """A pydantic error as plain words: no "Value error, ", no model class names."""
    kind = str(err.get("type", ""))
    msg = str(err.get("msg", ""))
    if kind == "missing":
        return "missing (required)"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a table of keys and values (an object)"
    if kind in ("list_type", "tuple_type"):
        return "expected a list"
    if kind in ("string_type",):
        return "expected text (a quoted string)"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "expected a whole number"
    if kind in ("float_type", "float_parsing"):
        return "expected a number"
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false"
    if kind in ("decimal_type", "decimal_parsing"):
        return "expected an amount such as 12.50"
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    for pydantic_words in (
        "Input should be",
        "input should be",
        "String should have",
        "List should have",
        "Value should have",
        "Decimal input should have",
    ):
        msg = msg.replace(pydantic_words, "expected")
    return msg


def _device_loc(loc: list[int | str]) -> list[int | str]:
    """pydantic puts the connection (the union's tag) after `devices[i]`: the file has none."""
    if len(loc) > 2 and loc[0] == "devices" and isinstance(loc[1], int) and loc[2] in CONNECTIONS:
        return loc[:2] + loc[3:]
    return loc


def _device_key_problem(key: str, connection: Any) -> str:
    """Why a device key is refused: it belongs to another connection, or it does not exist."""
    takes = [c for c, model in DEVICE_MODELS.items() if key in model.model_fields]
    if not takes:
        return "unknown key (check the spelling; see posbridge.example.toml)"
    own = DEVICE_MODELS[connection].model_fields if connection in DEVICE_MODELS else {}
    mine = ", ".join(k for k in own if k not in DeviceBase.model_fields and k != "connection")
    return (
        f"a setting of {' and '.join(takes)} devices, not of a {connection} device"
        f" (which takes {mine}); remove it or change connection"
    )


def _problems(exc: ValidationError, data: dict[str, Any]) -> Iterable[str]:
    for err in exc.errors():
        loc = _device_loc(list(err["loc"]))
        key = _key(loc)
        found, value = _lookup(data, loc)
        if err["type"] == "value_error" and (not loc or isinstance(value, dict)):
            continue  # a check across keys: `_model_problems` says it, even beside field errors
        msg = describe_error(err)
        if err["type"] == "union_tag_not_found":
            yield f"{key}.connection: missing (required); one of {', '.join(CONNECTIONS)}"
            continue
        if err["type"] == "union_tag_invalid":
            got = value.get("connection") if isinstance(value, dict) else None
            yield f"{key}.connection: expected one of {', '.join(CONNECTIONS)} (got {got!r})"
            continue
        if err["type"] == "missing":
            if loc[:1] == ["devices"] and len(loc) == 3 and loc[2] in _ADDRESS.values():
                continue  # `_address_problem` says it in words: "a tcp device needs `host`"
            yield f"{key}: missing (required)"
            continue
        if err["type"] == "extra_forbidden":
            if loc[:1] == ["devices"] and len(loc) == 3:
                device = _lookup(data, loc[:2])[1]
                yield f"{key}: " + _device_key_problem(str(loc[2]), device.get("connection"))
                continue
            yield f"{key}: unknown key (check the spelling; see posbridge.example.toml)"
            continue
        if loc and str(loc[-1]) in SECRET_KEYS:
            shown = REDACTED
        else:
            shown = repr(value) if found and not isinstance(value, dict | list) else ""
            if shown and _names_the_value(msg, value):
                shown = ""  # the message already quotes it, in the form the file has it
        yield f"{key}: {msg}" + (f" (got {shown})" if shown else "")


def _names_the_value(msg: str, value: Any) -> bool:
    """Whether a problem's words already show the value (a mode as 0o666, not as 438)."""
    forms = {repr(value)}
    if isinstance(value, int) and not isinstance(value, bool):
        forms.add(oct(value))
    return any(form in msg for form in forms)


# ------------------------------------------------------------ files the config names


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _path_at(section: dict[str, Any], key: str, default: Path | None) -> Path | None:
    value = section.get(key, default)
    if isinstance(value, Path):
        return value
    return Path(value) if isinstance(value, str) and value else None


def _secret_file_problem(key: str, path: Path) -> str | None:
    try:
        _read_secret_file(path, key.rsplit(".", 1)[-1])
    except ValueError as exc:
        return f"{key}: {exc}"
    return None


def _readable_file_problem(key: str, path: Path) -> str | None:
    if not path.exists():
        return f"{key}: {path} does not exist; fix the path or remove {key}"
    if not path.is_file():
        return f"{key}: {path} is not a regular file; give the file itself"
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        return (
            f"{key}: cannot read {path} ({exc.strerror}); make it readable by the user"
            f" posbridge runs as ({_user()})"
        )
    return None


def _ca_problem(path: Path) -> str | None:
    """The client loads the CA file at start: one it cannot load stops the service."""
    import ssl

    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        return (
            f"processing.ca_file: {path} holds no usable PEM certificate ({exc}); give the"
            " CA certificate of the processing's private CA"
        )
    except OSError as exc:
        return f"processing.ca_file: cannot read {path} ({exc.strerror})"
    return None


def writable_file_problem(key: str, path: Path) -> str | None:
    """Why this user cannot open or create `path` for writing, or None."""
    if path.is_dir():
        return f"{key}: {path} is a directory; give a file path inside it"
    if path.exists() or path.is_symlink():
        if not path.is_file():
            return f"{key}: {path} is not a regular file; give a file path"
        if not os.access(path, os.R_OK | os.W_OK):
            return (
                f"{key}: {path} is not writable by {_user()}; run: chown {_user()} {path}"
                " (or run posbridge as its owner)"
            )
        return None
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{key}: cannot create {path}: {ancestor} is not a directory; fix the path"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return (
            f"{key}: cannot create {path}: {ancestor} is not writable by {_user()};"
            f" run: install -d -o {_user()} {path.parent}"
        )
    return None


def file_problems(data: Any, *, service: bool = False) -> list[str]:
    """What is wrong with the files the config names (over raw data, defaults filled in)."""
    if not isinstance(data, dict):
        return []
    out: list[str | None] = []
    p, api, j, c = (_section(data, n) for n in ("processing", "api", "journal", "cheques"))
    if (pw := _path_at(p, "password_file", None)) is not None:
        out.append(_secret_file_problem("processing.password_file", pw))
    if (ca := _path_at(p, "ca_file", None)) is not None:
        problem = _readable_file_problem("processing.ca_file", ca)
        out.append(problem or _ca_problem(ca))
    if service:
        token_file = _path_at(api, "token_file", None)
        if token_file is not None:
            out.append(_secret_file_problem("api.token_file", token_file))
            if api.get("token") is not None:
                out.append(
                    "api: both token and token_file are set; keep one"
                    " (token_file, mode 0600, is better)"
                )
        elif api.get("token") is None:
            out.append(
                "api.token_file: missing; the POS API needs a token: set api.token_file"
                " to a 0600 file holding a long random token"
            )
        lock = _path_at(p, "lock_file", ProcessingSettings.model_fields["lock_file"].default)
        journal = _path_at(j, "path", JournalSettings.model_fields["path"].default)
        if lock is not None:
            out.append(writable_file_problem("processing.lock_file", lock))
        if journal is not None:
            out.append(writable_file_problem("journal.path", journal))
            cheques = _path_at(c, "path", None) or journal.with_name("cheques.sqlite")
            out.append(writable_file_problem("cheques.path", cheques))
    return [problem for problem in out if problem]


def _key(loc: list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _lookup(data: Any, loc: list[int | str]) -> tuple[bool, Any]:
    cur = data
    for part in loc:
        if isinstance(part, int) and isinstance(cur, list) and 0 <= part < len(cur):
            cur = cur[part]
        elif isinstance(part, str) and isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return False, None
    return True, cur


# ---------------------------------------------------------------------- showing


def redacted(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets replaced by ***."""
    data = config.model_dump(mode="json")
    for section in ("processing", "api"):
        for key in SECRET_KEYS:
            if data[section].get(key) is not None:
                data[section][key] = REDACTED
    for device in data["devices"]:
        # a device shows its own kind's keys only: those of another kind would be refused
        kind, connection = device["kind"], device["connection"]
        for key in ALL_KIND_KEYS - KIND_KEYS[kind] | NOT_ON.get((kind, connection), set()):
            device.pop(key, None)
        for key in SECRET_KEYS & device.keys():
            device[key] = REDACTED
    return data


def to_toml(data: dict[str, Any]) -> str:
    """TOML for our config shape that the loader reads back to the same config.

    Tables, arrays of tables (`[[devices]]`, `[[barcodes.loyalty]]`), arrays of
    scalars; None is written as a comment, since TOML has no null.
    """
    lines: list[str] = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                _table(lines, f"[[{section}]]", section, item)
        elif isinstance(body, dict):
            _table(lines, f"[{section}]", section, body)
        else:
            lines.insert(0, f"{_toml_key(section)} = {_toml_value(body)}")
    return "\n".join(lines)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], header: str, path: str, body: dict[str, Any]) -> None:
    lines.append(header)
    nested: list[tuple[str, Any]] = []
    for key, value in body.items():
        if value is None:
            lines.append(f"# {_toml_key(key)} = (not set)")
        elif isinstance(value, dict) or _is_tables(value):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    lines.append("")
    for key, value in nested:
        sub = f"{path}.{_toml_key(key)}"
        if isinstance(value, dict):
            _table(lines, f"[{sub}]", sub, value)
        else:
            for item in value:
                _table(lines, f"[[{sub}]]", sub, item)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + pairs + "}"
    # JSON's string escapes are TOML's, but for DEL, which TOML wants escaped too
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
