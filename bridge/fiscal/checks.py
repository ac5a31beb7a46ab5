"""`posbridge doctor` for a fiscal registrar: it answers, its shift, its FN, its paper.

Each check is (name, verdict, detail, fix) for `bridge.doctor.Check`; a registrar that
does not answer yields one failing check and the rest are skipped (they need an answer).
Only status commands are sent: nothing is printed, no document is touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from bridge.fiscal.desk import registrar_lock
from drivers.device import Flag
from drivers.fiscal.base import FiscalError

if TYPE_CHECKING:
    from bridge.config import DeviceSettings
    from drivers.fiscal.base import FiscalStatus

Verdict = Literal["pass", "warn", "fail", "skip"]
Found = tuple[str, Verdict, str, str | None]


def registrar_checks(d: DeviceSettings) -> Iterator[Found]:
    # lazy: the config-to-driver module loads every transport (pyserial among them);
    # needed only once a registrar is actually checked
    from bridge.devices.build import DeviceBuildError, address, build_registrar

    name = f"device {d.name}"
    try:
        registrar = build_registrar(d)
    except DeviceBuildError as exc:
        yield f"{name} answers", "fail", str(exc), "fix this [[devices]] entry"
        return
    try:
        with registrar_lock(d.name):
            registrar.open()
            try:
                status = registrar.status()
            finally:
                registrar.close()
    except (FiscalError, OSError) as exc:
        yield (
            f"{name} answers",
            "fail",
            " ".join(str(exc).split())[:200],
            f"check cable and power, the address ({address(d)}) and password in"
            " [[devices]], and that no other program (a POS's own fiscal driver) holds"
            " the port",
        )
        for what in ("shift", "FN", "paper"):
            yield f"{name} {what}", "skip", "skipped: the registrar did not answer", None
        return
    model = f"{status.model}, " if status.model else ""
    yield f"{name} answers", "pass", f"{model}mode: {status.mode_text}", None
    yield _shift(name, status)
    yield _fn(name, status)
    yield _paper(name, status)


def _shift(name: str, s: FiscalStatus) -> Found:
    if s.shift_over_24h is True:
        return (
            f"{name} shift",
            "fail",
            "the shift is open for over 24 hours: no receipt can be printed",
            "close the shift (Z report) on the register, then open a new one",
        )
    if s.receipt_open:
        return (
            f"{name} shift",
            "warn",
            "a receipt is open on the registrar",
            "finish or cancel it; a fiscal print of posbridge cancels only its own",
        )
    if s.shift_open is None:
        return f"{name} shift", "warn", f"shift state unknown (mode: {s.mode_text})", None
    state = "open, under 24 hours" if s.shift_open else "closed (a receipt opens it)"
    return f"{name} shift", "pass", state, None


def _fn(name: str, s: FiscalStatus) -> Found:
    if s.fn_present is False:
        return (
            f"{name} FN",
            "fail",
            "the fiscal storage (FN) is missing or does not answer",
            "call the service technician: no receipt can be printed without an FN",
        )
    if s.fn_full is True:
        return (
            f"{name} FN",
            "fail",
            "the fiscal storage (FN) is full",
            "call the service technician to replace the FN",
        )
    if s.fn_present is None:
        return f"{name} FN", "warn", "the registrar did not say whether its FN is present", None
    return f"{name} FN", "pass", "present, not full", None


def _paper(name: str, s: FiscalStatus) -> Found:
    if s.paper is Flag.FALSE:
        return f"{name} paper", "fail", "paper out", "load a receipt roll"
    if s.cover_open is Flag.TRUE:
        return f"{name} paper", "fail", "the cover is open", "close the printer cover"
    if s.paper is Flag.UNKNOWN:
        return f"{name} paper", "warn", "the registrar did not report its paper", None
    return f"{name} paper", "pass", "paper present, cover closed", None
