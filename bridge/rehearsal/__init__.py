"""The rehearsal room: the only part of bridge allowed to start stand-ins.

A rehearsal runs the register against the processing sandbox and virtual devices instead
of a real processing account and real hardware: `posbridge demo` (demo.py) and
`posbridge sandbox` (processing_server.py).  Keeping them here lets the import contracts in
pyproject.toml say it plainly: production code never imports `sandbox`; only this room does.
"""
