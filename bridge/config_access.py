"""Who else on the register can read or change the config file.

The config says where the register's bonuses and card numbers go, and may hold the
processing password and the API token inline.  A config others can read gives those
secrets to any local account: `config check` and `doctor` warn.  A config others can
write lets any local account point the register at its own "processing": `run` and
`config check` refuse it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bridge.config import Config


@dataclass(frozen=True)
class Finding:
    level: Literal["warn", "fail"]
    text: str
    fix: str


def inline_secrets(cfg: Config) -> list[str]:
    found = []
    if cfg.processing.password is not None:
        found.append("processing.password")
    if cfg.api.token is not None:
        found.append("api.token")
    return found


def writable_by_others(path: Path) -> Finding | None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & stat.S_IWOTH:
        return Finding(
            "fail", f"{path} is writable by others (mode {mode:04o})", f"chmod o-w {path}"
        )
    return None


def check(path: Path, cfg: Config) -> list[Finding]:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # it was just read; gone since: nothing to say about its mode
        return []
    out = []
    if (writable := writable_by_others(path)) is not None:
        out.append(writable)
    secrets = inline_secrets(cfg)
    if secrets and mode & stat.S_IROTH:
        out.append(
            Finding(
                "warn",
                f"{path} holds {' and '.join(secrets)} inline and is readable by others "
                f"(mode {mode:04o})",
                f"chmod o-r {path}, or move the secrets to password_file / token_file (0600)",
            )
        )
    return out


def refusal(path: Path, cfg: Config) -> str | None:
    """The one line `run` stops with, or None."""
    for finding in check(path, cfg):
        if finding.level == "fail":
            return f"refusing to start: {finding.text}; run: {finding.fix}"
    return None
