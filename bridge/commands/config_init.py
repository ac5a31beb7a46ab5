"""`posbridge config init --sandbox`: a starter config that passes `config check` at once.

The example config names files a fresh machine does not have (a password file, a token
file, /var/lib), so a first `config check` fails.  This writes a complete, working set
instead: the config, the processing password and a fresh POS API token (0600 each), and
state paths that exist and that the user can write.  It never overwrites a file: a
technician's real config is worth more than a starter one.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from bridge.commands import UsageError

SANDBOX_URL = "http://127.0.0.1:8900/publicapi"
SANDBOX_LOGIN, SANDBOX_PASSWORD = "register-1", "secret-1"
SERVICE_USER = "posbridge"


def configure(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser(
        "init",
        help="write a starter config (with --sandbox: one that works against `posbridge sandbox`)",
        description="Write posbridge.toml, processing.password and api.token (0600) and "
        "create the state directory. Existing files are never overwritten. As root the "
        "defaults are /etc/posbridge and /var/lib/posbridge, owned by the service user; "
        "otherwise ~/.config/posbridge. `--config FILE` (without --dir) writes the "
        "config there and the rest beside it.",
    )
    init.add_argument(
        "--sandbox", action="store_true", help="processing = the local sandbox (login register-1)"
    )
    init.add_argument("--url", default=SANDBOX_URL, help=f"the sandbox URL (default {SANDBOX_URL})")
    init.add_argument(
        "--dir",
        metavar="DIR",
        help="put the config and secrets in DIR (and the state files too, "
        "unless --state-dir is given)",
    )
    init.add_argument(
        "--state-dir", metavar="DIR", help="put the journal, cheques and lock file in DIR"
    )
    init.add_argument(
        "--user",
        metavar="USER",
        help=f"as root, give the secrets and state to USER (default {SERVICE_USER}"
        " when that user exists)",
    )


@dataclass(frozen=True)
class Layout:
    config_dir: Path
    state_dir: Path
    config_name: str = "posbridge.toml"

    @property
    def config(self) -> Path:
        return self.config_dir / self.config_name

    @property
    def password(self) -> Path:
        return self.config_dir / "processing.password"

    @property
    def token(self) -> Path:
        return self.config_dir / "api.token"


def layout(
    directory: str | None, state_dir: str | None = None, config_file: str | None = None
) -> Layout:
    """Where the files go: --dir, else beside --config FILE, else the defaults."""
    if not directory and config_file:
        f = Path(config_file).absolute()
        lay = Layout(f.parent, f.parent, f.name)
    elif directory:
        d = Path(directory).absolute()
        lay = Layout(d, d)
    elif os.geteuid() == 0:
        lay = Layout(Path("/etc/posbridge"), Path("/var/lib/posbridge"))
    else:
        home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        lay = Layout(home / "posbridge", home / "posbridge")
    if state_dir:
        lay = Layout(lay.config_dir, Path(state_dir).absolute(), lay.config_name)
    return lay


def render(lay: Layout, url: str) -> str:
    from bridge.config import to_toml  # lazy: pydantic, off the CLI's cold start

    data = {
        "processing": {
            "url": url,
            "login": SANDBOX_LOGIN,
            "password_file": str(lay.password),
            "register_id": "sandbox-1",
            "lock_file": str(lay.state_dir / "processing.lock"),
        },
        "journal": {"path": str(lay.state_dir / "journal.sqlite")},
        "cheques": {"path": str(lay.state_dir / "cheques.sqlite")},
        "api": {"host": "127.0.0.1", "port": 8765, "token_file": str(lay.token)},
        "receipt": {"language": "ru", "columns": 42},
    }
    head = (
        "# Starter config written by `posbridge config init --sandbox`: processing is the\n"
        "# local sandbox (run `posbridge sandbox`). Every key, with comments:\n"
        "# posbridge.example.toml. Add [[devices]] tables for the peripherals, e.g. a\n"
        "# printer that writes ESC/POS to a file:\n"
        '#   [[devices]]\n#   name = "receipt"\n#   kind = "printer"\n'
        '#   connection = "file"\n#   port = "/tmp/receipt.bin"\n\n'
    )
    return head + to_toml(data)


def _owner(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) to give the files to, as root; None to keep them the caller's."""
    if os.geteuid() != 0:
        if user:
            raise UsageError(f"--user {user}: only root can give files to another user")
        return None
    try:
        entry = pwd.getpwnam(user or SERVICE_USER)
    except KeyError:
        if user:
            raise UsageError(f"--user {user}: no such user") from None
        return None
    return entry.pw_uid, entry.pw_gid


def _write_new(
    path: Path, text: str, mode: int, owner: tuple[int, int] | None, group_only: bool = False
) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits the mode needs
        if owner is not None:
            os.fchown(fd, 0 if group_only else owner[0], owner[1])
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _check_url(url: str) -> None:
    """The config's own rule for processing.url, applied before anything is written."""
    from bridge import config  # lazy: pydantic, off the CLI's cold start

    try:
        config.parse({"processing": {"url": url, "login": SANDBOX_LOGIN, "password": "-"}})
    except config.ConfigError as exc:
        raise UsageError(f"--url: {'; '.join(exc.problems)}") from None


def run(args: argparse.Namespace) -> int:
    if not args.sandbox:
        raise UsageError(
            "config init writes a sandbox starter config only: add --sandbox; for a real "
            "processing copy posbridge.example.toml and fill it in (docs/install.md, step 3)"
        )
    lay = layout(args.dir, args.state_dir, getattr(args, "config", None))
    url = args.url.rstrip("/")
    _check_url(url)
    owner = _owner(args.user)
    targets = [lay.config, lay.password, lay.token]
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    if existing:
        raise UsageError(
            f"{', '.join(existing)} already exist(s); nothing written (move them away, or "
            "use --dir for a new place)"
        )
    try:
        for d in dict.fromkeys([lay.config_dir, lay.state_dir]):
            d.mkdir(mode=0o750, parents=True, exist_ok=True)
        if owner is not None:
            os.chown(lay.config_dir, 0, owner[1])
            os.chown(lay.state_dir, *owner)  # the service writes its journal there
        _write_new(lay.password, SANDBOX_PASSWORD + "\n", 0o600, owner)
        _write_new(lay.token, secrets.token_hex(24) + "\n", 0o600, owner)
        _write_new(lay.config, render(lay, url), 0o640, owner, group_only=True)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    print(f"wrote {lay.config}, {lay.password} and {lay.token} (0600)")
    if owner is None and os.geteuid() == 0 and lay.config_dir == Path("/etc/posbridge"):
        print(
            f"warning: no user {SERVICE_USER}: the files stay root's, which the service "
            f"cannot read; create the user (docs/install.md, step 2), then: chown "
            f"{SERVICE_USER}: {lay.password} {lay.token} {lay.state_dir}",
            file=sys.stderr,
        )
    print(
        f"next: posbridge sandbox   (in another terminal), then: "
        f"posbridge --config {lay.config} config check"
    )
    return 0
