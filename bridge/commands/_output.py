"""Output helpers shared by commands (imported inside their `run`: the protocol is pydantic)."""

from __future__ import annotations

import sys
from typing import Any

from bridge.loyalty.protocol import dumps


def print_json(data: Any) -> None:
    sys.stdout.write(dumps(data).decode("utf-8") + "\n")
