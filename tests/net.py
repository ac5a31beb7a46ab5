"""Loopback ports for tests: one helper instead of a copy per test module."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (bound, read, released).

    Good for a server about to start on it, and for "processing is unreachable": nothing
    accepts there until someone binds it again.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
