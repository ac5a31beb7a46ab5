"""`posbridge sandbox`: the processing stand-in in the foreground, started from the bridge CLI.

The stand-in's own command line (sandbox.cli) owns the options' checks and the shutdown;
this module only turns the bridge's parsed options back into its argv.
"""

from __future__ import annotations

from sandbox.cli import main


def serve(host: str, port: int, db: str | None, seed: str | None, latency_ms: float | None) -> int:
    """Run until Ctrl-C or SIGTERM; the exit code is the sandbox command's."""
    argv = ["--host", host, "--port", str(port)]
    if db:
        argv += ["--db", db]
    if seed:
        argv += ["--seed", seed]
    if latency_ms is not None:
        argv += ["--latency", str(latency_ms)]
    return main(argv)
