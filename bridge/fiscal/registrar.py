"""The registrar the fiscal endpoint prints on, from the config.

`[receipt] registrar` names it; with one registrar configured and none named, that one
is used.  Its driver is built by the one config-to-driver module, like every device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.fiscal.desk import Registrar

if TYPE_CHECKING:
    from bridge.config import Config, DeviceSettings


class NoRegistrar(LookupError):
    """No registrar is configured (or the one named is not a registrar); says how to fix."""


def registrar_settings(config: Config, name: str | None = None) -> DeviceSettings:
    registrars = [d for d in config.devices if d.kind == "registrar"]
    wanted = name or config.receipt.registrar
    if wanted is None and len(registrars) == 1:
        return registrars[0]
    if wanted is None:
        if not registrars:
            raise NoRegistrar(
                'no fiscal registrar is configured: add a [[devices]] entry with kind = "registrar"'
            )
        raise NoRegistrar(
            f"{len(registrars)} registrars are configured"
            f" ({', '.join(d.name for d in registrars)}): name one in [receipt] registrar"
        )
    for d in registrars:
        if d.name == wanted:
            return d
    known = ", ".join(d.name for d in registrars) or "none"
    raise NoRegistrar(f"no registrar named {wanted!r}; configured registrars: {known}")


def registrar_for(config: Config, name: str | None = None) -> Registrar:
    # lazy: the config-to-driver module loads every transport (pyserial among them);
    # a register without a registrar never needs it
    from bridge.devices.build import build_registrar

    device = registrar_settings(config, name)
    return Registrar(
        name=device.name,
        connect=lambda: build_registrar(device),
        tax_system=device.tax_system,
        default_tax=device.default_tax,
    )
