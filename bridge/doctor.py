"""`posbridge doctor`: everything a technician checks on a register, with a fix for each.

Each check says pass, warn or fail and, when it is not a pass, what to do about it.
The checks run in order and a failing one never stops the others: the point is one
screen that tells the technician everything that is wrong at once.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

from bridge import config as config_mod
from bridge import config_access
from bridge.config import Config, DeviceSettings, FileDevice, HidDevice, SerialDevice, TcpDevice
from bridge.devices import build
from bridge.fiscal.checks import registrar_checks
from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal, JournalDamaged, JournalError, read_alarm
from bridge.loyalty.protocol import Identifier
from bridge.loyalty.sequencer import LockFileError
from drivers.device import DeviceError, Flag
from drivers.transport.base import TransportError

Verdict = Literal["pass", "warn", "fail", "skip"]
SERVICE_GROUP = "posbridge"
CLOCK_WARN, CLOCK_FAIL = 60.0, 600.0  # seconds; offers are evaluated on local time
DISK_WARN, DISK_FAIL = 1024**3, 100 * 1024**2


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"check": self.name, "verdict": self.verdict, "detail": self.detail, "fix": self.fix}


def run_checks(
    path: str | None, *, service_group: str = SERVICE_GROUP, now: Callable[[], float] = time.time
) -> list[Check]:
    source = config_mod.resolve_path(path)
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        if not source.exists():
            fix = (
                f"create {source} (start from posbridge.example.toml), or point --config or"
                f" {config_mod.ENV_VAR} at the register's config file"
            )
        else:
            fix = f"edit {exc.source}, then `posbridge config check`"
        return [
            Check("config", "fail", "; ".join(exc.problems), fix),
            Check("the other checks", "skip", "they need a usable config", None),
        ]
    out = [Check("config", "pass", f"{source} is valid")]
    service = config_mod.file_problems(config_mod.read_raw(source), service=True)
    if service:
        out.append(
            Check(
                "service files",
                "fail",
                "; ".join(service),
                "fix each as it says: `posbridge run` refuses to start until then",
            )
        )
    else:
        out.append(
            Check(
                "service files",
                "pass",
                "token, journal, cheque and lock files are usable by this user",
            )
        )
    out.extend(_config_access(source, cfg))
    for device in cfg.devices:
        out.extend(_device_checks(device, service_group))
    if cfg.passthrough:
        # lazy: only a register with [[passthrough]] entries loads the pass-through package
        from bridge.passthrough.checks import passthrough_checks

        out.extend(Check(*found) for found in passthrough_checks(cfg))
    out.extend(_processing_checks(cfg, now))
    out.extend(_journal_checks(cfg, now))
    return out


def _config_access(path: Path, cfg: Config) -> Iterator[Check]:
    findings = config_access.check(path, cfg)
    for f in findings:
        yield Check("config file", f.level, f.text, f.fix)
    if not findings:
        yield Check(
            "config file", "pass", f"{path}: others can neither change it nor read secrets in it"
        )


# ---------------------------------------------------------------------- devices


def _device_checks(d: DeviceSettings, group: str) -> Iterator[Check]:
    name = f"device {d.name}"
    if isinstance(d, SerialDevice | FileDevice | HidDevice) and "://" not in d.port:
        port = Path(d.port)
        if not port.exists():
            yield Check(
                f"{name} port",
                "fail",
                f"{port} does not exist",
                "plug the device in; check `posbridge devices` for its current path",
            )
            return
        yield _permissions(name, port, group)
    if d.kind == "registrar":  # status, shift age, FN, paper: several checks
        yield from (Check(*found) for found in registrar_checks(d))
        return
    answer = _device_answers(d)
    if answer is not None:
        yield answer


def _permissions(name: str, port: Path, group: str) -> Check:
    st = port.stat()
    mode = stat.S_IMODE(st.st_mode)
    try:
        owner_group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        owner_group = str(st.st_gid)
    fix = "install the udev rules: `posbridge udev-rules` (group posbridge, mode 0660)"
    if mode & 0o002:
        return Check(f"{name} access", "fail", f"{port} is world-writable ({mode:o})", fix)
    if owner_group != group:
        return Check(
            f"{name} access",
            "warn",
            f"{port} belongs to group {owner_group}, not {group} ({mode:o})",
            fix,
        )
    if not mode & 0o060 == 0o060:
        return Check(f"{name} access", "warn", f"group {group} cannot read and write {port}", fix)
    return Check(f"{name} access", "pass", f"{port}: group {group}, mode {mode:o}")


def _device_answers(d: DeviceSettings) -> Check | None:
    name = f"device {d.name}"
    if d.kind == "printer":
        return _printer_answers(d)
    if isinstance(d, SerialDevice | TcpDevice | FileDevice):  # scanners, readers, registrars
        try:
            transport = build.transport(d)
            transport.open()
            transport.close()
        except (TransportError, build.DeviceBuildError) as exc:
            return Check(
                f"{name} opens",
                "fail",
                _short(exc),
                "is the service running and holding the port? stop it, or check the cable",
            )
        return Check(f"{name} opens", "pass", f"{build.address(d)} opens")
    return None


def _printer_answers(d: DeviceSettings) -> Check:
    name = f"device {d.name}"
    try:
        printer = build.build_printer(d)
    except build.DeviceBuildError as exc:
        return Check(f"{name} answers", "fail", str(exc), "fix this [[devices]] entry")
    try:
        printer.transport.open()  # as `devices` and `test-print` do: absent is a fail
    except (DeviceError, OSError) as exc:
        return Check(
            f"{name} answers",
            "fail",
            f"missing: {_short(exc)}",
            "plug the printer in and power it on, or fix its address in"
            " [[devices]]; `posbridge devices` lists what is connected",
        )
    try:
        status = printer.status()
    except (DeviceError, OSError) as exc:
        return Check(
            f"{name} answers",
            "fail",
            f"status query failed: {_short(exc)}",
            "check cable and power",
        )
    finally:
        printer.transport.close()
    if not status.answered:
        return Check(
            f"{name} answers",
            "warn",
            "no answer to a status query (DLE EOT)",
            "check cable and power; some printers have no back channel",
        )
    reason = status.blocking_reason()
    if reason:
        return Check(f"{name} answers", "fail", reason, "open the printer and fix it")
    near = " (paper near end)" if status.paper_near_end is Flag.TRUE else ""
    return Check(
        f"{name} answers",
        "warn" if near else "pass",
        f"status ok{near}",
        "load a new roll soon" if near else None,
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."


# ---------------------------------------------------------------------- processing


def _processing_checks(cfg: Config, now: Callable[[], float]) -> Iterator[Check]:
    def skipped(why: str) -> Iterator[Check]:
        yield Check("credentials", "skip", why, None)
        yield Check("clock", "skip", why, None)

    try:
        client = LoyaltyClient.from_settings(cfg.processing)
    except (OSError, ValueError) as exc:
        yield Check("processing", "fail", _short(exc), "check the [processing] section")
        yield from skipped("skipped: the processing client cannot be built")
        return
    with client:
        try:
            date = client.probe()
        except LockFileError as exc:
            yield Check(
                "processing lock",
                "fail",
                _short(exc),
                f"make {cfg.processing.lock_file} (and its directory) writable by this"
                " user, or run doctor as the service user",
            )
            yield from skipped("skipped: no request can be sent without the register lock")
            return
        except errors.LoyaltyError as exc:
            yield Check(
                "processing reachable",
                "fail",
                _short(exc),
                "check the network, processing.url and the CA file; sales go on offline",
            )
            yield from skipped("skipped: processing is not reachable")
            return
        yield Check("processing reachable", "pass", cfg.processing.url)
        accepted = Check(
            "credentials", "pass", f"processing accepted login {cfg.processing.login!r}"
        )
        try:
            # a balance query for a number no card has: any business answer proves the login
            client.balance(Identifier(value="0000000000000"))
            yield accepted
        except errors.AuthenticationFailed:
            yield Check(
                "credentials",
                "fail",
                f"processing refused login {cfg.processing.login!r} and its password",
                "set processing.login and the password exactly as in the partner settings",
            )
        except errors.DeviceBlocked as exc:
            yield Check(
                "credentials",
                "fail",
                f"the register is blocked: {exc.cashier_text}",
                "ask the processing administrator to unblock it",
            )
        except errors.BusinessError:
            yield accepted
        except LockFileError as exc:
            yield Check("credentials", "fail", _short(exc), "make the lock file writable")
        except errors.LoyaltyError as exc:
            # the message names the test query's operation and card: noise to a technician
            reason = re.sub(r"^balance op \S+ card \S+: ", "", _short(exc))
            yield Check(
                "credentials",
                "warn",
                f"the test query failed: {reason}",
                "try again; see the service log",
            )
    yield _clock(date, now)


def _clock(date: str | None, now: Callable[[], float]) -> Check:
    if not date:
        return Check(
            "clock",
            "warn",
            "processing sent no Date header to compare with",
            "check the register's time against a reliable clock (timedatectl)",
        )
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "warn", f"unreadable Date header {date!r}", None)
    skew = now() - theirs
    text = f"register clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} processing"
    fix = "enable time sync: `timedatectl set-ntp true`; offers use the register's local time"
    if abs(skew) > CLOCK_FAIL:
        return Check("clock", "fail", text, fix)
    if abs(skew) > CLOCK_WARN:
        return Check("clock", "warn", text, fix)
    return Check("clock", "pass", text)


# ---------------------------------------------------------------------- journal


def _journal_checks(cfg: Config, now: Callable[[], float]) -> Iterator[Check]:
    j = cfg.journal
    directory = j.path.parent
    alarm = read_alarm(j.path)
    if alarm:
        moved = alarm.get("movedTo", "?")
        yield Check(
            "journal alarm",
            "fail",
            f"the journal was damaged ({alarm.get('problem')}) on {alarm.get('at')}"
            f" and moved to {moved}; a fresh journal is in use",
            f"`posbridge journal salvage {moved}`, then `posbridge journal acknowledge`",
        )
    if not directory.exists():
        yield Check(
            "journal",
            "warn",
            f"{directory} does not exist yet",
            "it is created at first start; check the service can write there",
        )
    else:
        try:
            journal = Journal(j.path, repair=False)  # looking never moves it aside
        except JournalDamaged as exc:
            yield Check(
                "journal",
                "fail",
                f"{j.path} is damaged ({exc.problem})",
                "restart the service: it moves the file aside and starts a fresh"
                " journal; then `posbridge journal salvage` the moved file",
            )
        except JournalError as exc:
            yield Check("journal", "fail", str(exc), "check ownership of the journal directory")
        else:
            counts = journal.counts()
            journal.close()
            age = counts.oldest_pending_age(now())
            limit_age = j.max_age_hours * 3600
            detail = f"{counts.pending} pending, {counts.rejected} rejected" + (
                f", oldest {age / 3600:.1f} h" if age else ""
            )
            if counts.pending > j.max_pending or (age is not None and age > limit_age):
                yield Check(
                    "journal",
                    "fail",
                    detail + " (over the limits)",
                    "restore the connection to processing; `posbridge journal replay`",
                )
            elif counts.rejected:
                yield Check(
                    "journal",
                    "warn",
                    detail,
                    "see `posbridge journal list --status rejected`; retry or escalate",
                )
            elif counts.pending:
                yield Check("journal", "warn", detail, "it drains when processing is reachable")
            else:
                yield Check("journal", "pass", detail)
            if stat.S_IMODE(j.path.stat().st_mode) & 0o077:
                yield Check(
                    "journal file",
                    "fail",
                    f"{j.path} is readable by others",
                    f"chmod 0600 {j.path}",
                )
    probe = directory if directory.exists() else Path(os.sep)
    free = shutil.disk_usage(probe).free
    text = f"{free / 1024**3:.1f} GiB free for the journal"
    if free < DISK_FAIL:
        yield Check("disk", "fail", text, "free disk space: the journal must be able to grow")
    elif free < DISK_WARN:
        yield Check("disk", "warn", text, "free some disk space")
    else:
        yield Check("disk", "pass", text)
