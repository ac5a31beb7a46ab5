"""CLI subcommands: one module each, exposing `configure(parser)` and `run(args) -> int`.

Modules import only argparse at top level; heavy imports happen inside `run`, so
`posbridge --version` and `--help` stay fast.
"""


class UsageError(Exception):
    """Bad arguments or input files; the message says which and why (exit code 2)."""
