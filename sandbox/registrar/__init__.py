"""An emulated Shtrih-M fiscal registrar: a stand-in beside the processing sandbox.

It speaks the vendor's protocol v1 on a pty (the serial port) and on TCP (7778 on a real
device), keeps a paper log and the closed fiscal documents, and takes injected faults.
It frames bytes itself and imports nothing from `drivers` or `bridge`: it is the
independent peer that catches the driver's framing bugs.

One module per concern: `framing` (bytes of a frame, LRC), `link` (the ENQ/ACK/NAK
handshake and the pending answer), `state` (modes, submodes, shift, receipt, counters),
`commands` (each command's layout and answer), `errors` (device error codes), `paper`,
`faults`, `servers` (pty, TCP), `admin` (HTTP JSON on loopback), `emulator` (the object
tests hold), `cli` (`posbridge sandbox registrar`, `python -m sandbox.registrar`).
"""

from __future__ import annotations

from sandbox.registrar.commands import Identity
from sandbox.registrar.emulator import DEFAULT_TCP_PORT, RegistrarEmulator
from sandbox.registrar.errors import DeviceError
from sandbox.registrar.faults import Fault, FaultKind, FaultSpecError
from sandbox.registrar.paper import PaperLine

__all__ = [
    "DEFAULT_TCP_PORT",
    "DeviceError",
    "Fault",
    "FaultKind",
    "FaultSpecError",
    "Identity",
    "PaperLine",
    "RegistrarEmulator",
]
