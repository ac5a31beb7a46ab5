"""udev rules that let the posbridge service user reach exactly the configured devices.

posbridge should not run as root, and device nodes must not be world-writable (anyone on
the register could then print, or read card swipes).  Each configured device gets a rule
that gives its node to the `posbridge` group with mode 0660 and a stable name,
/dev/posbridge/NAME, whatever port it is plugged into.  Keyboard-wedge devices are also
hidden from the desktop (libinput, X) so scans never type into a focused window, even
before posbridge has grabbed the device.

Rules are written from what identifies a device (its VID:PID[:serial], a by-id or
by-path link, a kernel name), never from /dev/posbridge/NAME: that link is what the rules
create, so a config naming a device by it still gets its rule when it also says `usb`
(or, through the config's `by_id`, the device's own path).

Values are matched by udev as glob patterns, so a name or serial holding `*`, `?` or `[`
would silently match more devices: such values are refused, as are quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from drivers.discovery import DeviceSpec, NodeKind

GROUP = "posbridge"
MODE = "0660"
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._+:@-]+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_KERNEL_NAME = re.compile(r"^/dev/(tty[A-Za-z]+[0-9]+|input/event[0-9]+)$")
_BY_LINK = re.compile(r"^/dev/((serial|input)/by-(id|path)/[^\s\"*?\[\]]+)$")
STABLE_DIR = "/dev/posbridge/"


class RuleError(ValueError):
    """A configured device cannot be expressed as a safe udev rule; the message says why."""


def _value(spec: DeviceSpec, what: str, value: str) -> str:
    if not _SAFE_VALUE.match(value):
        raise RuleError(
            f"device {spec.name!r}: {what} {value!r} holds characters udev would treat as a "
            "pattern or quote; use letters, digits and . _ + : @ - only"
        )
    return value


def _permissions(spec: DeviceSpec, suffix: str = "") -> str:
    return f'GROUP="{GROUP}", MODE="{MODE}", SYMLINK+="posbridge/{spec.name}{suffix}"'


def _usb_match(spec: DeviceSpec, attr: str) -> str:
    """ATTR (the device itself) or ATTRS (it or a parent) for VID:PID[:serial]."""
    usb = spec.usb_id
    if usb is None:
        raise RuleError(f"device {spec.name!r}: no usb VID:PID to match on")
    parts = [f'{attr}{{idVendor}}=="{usb.vid:04x}"', f'{attr}{{idProduct}}=="{usb.pid:04x}"']
    if usb.serial:
        parts.append(f'{attr}{{serial}}=="{_value(spec, "USB serial", usb.serial)}"')
    return ", ".join(parts)


def _node_match(spec: DeviceSpec, path: str) -> str:
    """A configured /dev path: a kernel name (ttyS0) or a persistent by-id/by-path link."""
    if m := _KERNEL_NAME.match(path):
        return f'KERNEL=="{m.group(1).rsplit("/", 1)[-1]}"'
    if m := _BY_LINK.match(path):
        return f'SYMLINK=="{m.group(1)}"'
    raise RuleError(
        f"device {spec.name!r}: {path!r} is not a /dev/ttyXXXN, /dev/input/eventN or a "
        "/dev/serial|input/by-id|by-path link, so no udev rule can name it"
    )


def is_stable_name(path: str | None) -> bool:
    """True for /dev/posbridge/...: a link these rules create, so it cannot identify a device."""
    return path is not None and path.startswith(STABLE_DIR)


def _identity(spec: DeviceSpec, path: str | None) -> str | None:
    """The path to match on, or None to match by `usb`; refuses a stable name alone."""
    if path is None or not is_stable_name(path):
        return path
    if path != STABLE_DIR + spec.name:
        raise RuleError(
            f"device {spec.name!r}: {path!r} is not the name these rules create for it "
            f"({STABLE_DIR}{spec.name}); use that, or the device's own path"
        )
    if spec.usb is None:
        raise RuleError(
            f"device {spec.name!r}: {path!r} is the link these rules create, not the device; "
            'say what identifies it: usb = "VID:PID[:serial]" or by_id = '
            '"/dev/serial/by-id/..." (`posbridge devices` shows both)'
        )
    return None


def rules_for_device(spec: DeviceSpec) -> list[str]:
    """Rule lines (with a comment first) for one configured device."""
    if not _SAFE_NAME.match(spec.name):
        raise RuleError(
            f"device name {spec.name!r}: use letters, digits and . _ - only; it becomes "
            "/dev/posbridge/NAME"
        )
    lines = [f"# {spec.name} ({spec.kind})"]
    if spec.kind is NodeKind.USB:
        lines.append(
            f'SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", {_usb_match(spec, "ATTR")}, '
            + _permissions(spec)
        )
        # a printer-class device may also be bound to usblp: the same rights for /dev/usb/lpN
        lines.append(
            f'SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", {_usb_match(spec, "ATTRS")}, '
            + _permissions(spec, "-lp")
        )
    elif spec.kind is NodeKind.SERIAL:
        if spec.port is not None and "://" in spec.port:
            return [*lines, f"# {spec.name}: network port {spec.port}, no device node"]
        port = _identity(spec, spec.port)
        match = _node_match(spec, port) if port else _usb_match(spec, "ATTRS")
        lines.append(f'SUBSYSTEM=="tty", {match}, ' + _permissions(spec))
    else:
        # by VID:PID, only the keyboard node: a scanner may have more (consumer keys)
        input_path = _identity(spec, spec.input_path)
        match = (
            _node_match(spec, input_path)
            if input_path
            else _usb_match(spec, "ATTRS") + ', ENV{ID_INPUT_KEYBOARD}=="1"'
        )
        # Hide the wedge from the desktop: libinput ignores it, and without ID_INPUT_KEY*
        # neither X nor the console adds it as a keyboard.  posbridge reads the node itself.
        lines.append(
            f'SUBSYSTEM=="input", KERNEL=="event*", {match}, '
            'ENV{LIBINPUT_IGNORE_DEVICE}="1", ENV{ID_INPUT_KEYBOARD}="", ENV{ID_INPUT_KEY}="", '
            + _permissions(spec)
        )
    return lines


def generate_rules(specs: Iterable[DeviceSpec]) -> str:
    """A complete rules file, e.g. for /etc/udev/rules.d/99-posbridge.rules."""
    specs = list(specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise RuleError("device names must be unique: each becomes /dev/posbridge/NAME")
    out = [
        "# Generated by posbridge from its device configuration; regenerate, don't edit.",
        f'# Nodes go to group "{GROUP}", mode {MODE}: never world-accessible.',
        "",
    ]
    for spec in specs:
        out += [*rules_for_device(spec), ""]
    return "\n".join(out)
