"""CLI subcommands: one module each, exposing `configure(parser)` and `run(args) -> int`
(modules named `_*` are the commands' shared parts, not commands).

The CLI imports every command module to build its parser, so a module imports only light
parts at the top (argparse, the standard library, small modules of ours); what pulls in
pydantic, httpx, SQLite, python-escpos or the hardware libraries is imported inside `run`
under a `# lazy:` comment, so `posbridge --version` and `--help` stay fast
(tests/test_house_rules.py holds both rules).
"""

# exit codes, the same for every command (bridge.cli maps error families to them)
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception


class UsageError(Exception):
    """Bad arguments or input files; the message says which and why (exit code 2)."""
