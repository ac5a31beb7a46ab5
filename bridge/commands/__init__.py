"""CLI subcommands: one module each, exposing `configure(parser)` and `run(args) -> int`.

Modules import only argparse at top level; heavy imports happen inside `run`, so
`posbridge --version` and `--help` stay fast.
"""
