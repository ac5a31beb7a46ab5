"""`posbridge sandbox registrar`: the registrar emulator in the foreground, from the bridge CLI.

The emulator's own command line (sandbox.registrar.cli) owns the options' checks and the
shutdown; this module only hands it the arguments the bridge's parser collected.
"""

from __future__ import annotations

from sandbox.registrar.cli import main


def serve(argv: list[str]) -> int:
    """Run until Ctrl-C or SIGTERM; the exit code is the emulator command's."""
    return main(argv)
