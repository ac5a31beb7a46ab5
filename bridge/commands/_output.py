"""Output helpers shared by commands."""

from __future__ import annotations

import sys
from typing import Any


def print_json(data: Any) -> None:
    from bridge.loyalty.protocol import dumps

    sys.stdout.write(dumps(data).decode("utf-8") + "\n")
