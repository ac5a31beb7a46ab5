"""The register's configuration: one TOML file, validated before anything starts.

A technician edits this file by hand on a register with no IDE, so every problem is
reported at once, one line each, naming the key, the bad value and what is expected;
never a traceback.  Secrets (processing password, API token) are `SecretStr`: they
do not appear in reprs, errors or `config show`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.barcodes import BarcodeSettings

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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _read_secret_file(path: Path, key: str) -> str:
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read {key} {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXO):
        raise ValueError(f"{key} {path} is readable by others; run: chmod 0600 {path}")
    if not text:
        raise ValueError(f"{key} {path} is empty")
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

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CA file {value} does not exist")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of processing.password or processing.password_file")
        if self.password_file is not None:
            _read_secret_file(self.password_file, "password_file")
        return self

    def secret_password(self) -> str:
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_file is not None
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
        if self.probe_max_seconds < self.probe_min_seconds:
            raise ValueError("journal.probe_max_seconds must be >= journal.probe_min_seconds")
        return self


class ChequeSettings(Section):
    """The register's open cheques: kept on disk, bounded, cancelled when abandoned."""

    path: Path | None = Field(default=None,
                              description="default: cheques.sqlite beside the journal")
    max_open: int = Field(default=200, ge=1, le=10_000)
    expire_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    keep_closed_days: float = Field(default=14.0, ge=0, le=3650)


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                description="larger request bodies are refused (413)")
    header_timeout: float = Field(default=5.0, gt=0, le=60,
                                  description="seconds a client has to send a request's "
                                  "headers, and again its body")
    max_connections: int = Field(default=256, ge=4, le=10_000, description=(
        "open connections at most; past it the one idle longest is closed"))

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


DeviceKind = Literal["scanner", "card_reader", "printer"]
Connection = Literal["serial", "usb", "tcp", "file", "hid"]


class DeviceSettings(Section):
    """One peripheral; the drivers issue owns what each connection needs."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    kind: DeviceKind
    connection: Connection
    port: str | None = Field(default=None, description="serial port, file path or input device")
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    flow: Literal["none", "rtscts", "xonxoff"] = "none"
    usb: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:.+)?$",
        description="VID:PID[:serial]",
    )
    host: str | None = None
    tcp_port: int = Field(default=9100, ge=1, le=65535)
    suffix: Literal["CR", "CRLF", "LF", "TAB"] = "CR"
    prefix: str = ""
    profile: str | None = None
    codepage: str = "CP866"
    codepage_slot: int | None = Field(default=None, ge=0, le=255)
    paper_mm: Literal[58, 80] = 80

    @model_validator(mode="after")
    def _address(self) -> Self:
        need = {
            "serial": ("port",),
            "file": ("port",),
            "hid": ("port",),
            "usb": ("usb",),
            "tcp": ("host",),
        }[self.connection]
        for key in need:
            if getattr(self, key) is None:
                raise ValueError(f"a {self.connection} device needs `{key}`")
        return self


class Config(Section):
    processing: ProcessingSettings
    barcodes: BarcodeSettings = BarcodeSettings()
    journal: JournalSettings = JournalSettings()
    cheques: ChequeSettings = ChequeSettings()
    api: ApiSettings = ApiSettings()
    receipt: ReceiptSettings = ReceiptSettings()
    devices: list[DeviceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> Self:
        names = [d.name for d in self.devices]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"device names must be unique; repeated: {', '.join(dupes)}")
        if self.receipt.printer is not None:
            printers = [d.name for d in self.devices if d.kind == "printer"]
            if self.receipt.printer not in printers:
                raise ValueError(
                    f"receipt.printer {self.receipt.printer!r} is not a configured printer"
                    f" (printers: {', '.join(printers) or 'none'})"
                )
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


def load(path: str | os.PathLike[str] | None = None) -> Config:
    source = resolve_path(path)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            str(source), [f"file not found (use --config FILE or {ENV_VAR})"]
        ) from None
    except OSError as exc:
        raise ConfigError(str(source), [f"cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(source), [f"not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source), [f"TOML syntax error: {exc}"]) from None
    return parse(data, str(source))


def load_optional(path: str | os.PathLike[str] | None = None) -> Config | None:
    """The config given with --config, else the resolved file if it exists, else None.

    For tools that also work on a bare machine (decode, devices); a file given with
    --config that is missing or wrong is still an error.
    """
    resolved = resolve_path(path)
    if path is None and not resolved.exists():
        return None
    return load(resolved)


def parse(data: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, list(_problems(exc, data))) from None


def _problems(exc: ValidationError, data: dict[str, Any]) -> Iterable[str]:
    for err in exc.errors():
        loc = [p for p in err["loc"]]
        key = _key(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            yield f"{key}: missing (required)"
            continue
        if err["type"] == "extra_forbidden":
            yield f"{key}: unknown key (check the spelling; see posbridge.example.toml)"
            continue
        if loc and str(loc[-1]) in SECRET_KEYS:
            shown = REDACTED
        else:
            found, value = _lookup(data, loc)
            shown = repr(value) if found and not isinstance(value, dict | list) else ""
        yield f"{key}: {msg}" + (f" (got {shown})" if shown else "")


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
    return data


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for our two-level config (tables and arrays of tables)."""
    lines: list[str] = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines.extend(_toml_pairs(item))
                lines.append("")
        else:
            lines.append(f"[{section}]")
            lines.extend(_toml_pairs(body))
            lines.append("")
    return "\n".join(lines)


def _toml_pairs(body: dict[str, Any]) -> list[str]:
    out = []
    for key, value in body.items():
        if value is None:
            out.append(f"# {key} = (not set)")
        else:
            out.append(f"{key} = {_toml_value(value)}")
    return out


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)
