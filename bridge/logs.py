"""One structured line per event, to journald (via stderr) or a rotating file.

Lines are `key=value` pairs a technician can grep and a log shipper can parse.  Under
systemd (JOURNAL_STREAM set) the timestamp is left to journald.  Nothing here prints
secrets: callers pass masked card numbers, and the config is never logged whole.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path


class KeyValueFormatter(logging.Formatter):
    def __init__(self, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append(f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"logger={record.name}")
        message = record.getMessage().replace("\n", " | ")
        parts.append(f'msg="{message}"' if " " in message else f"msg={message}")
        if record.exc_info:
            exc = self.formatException(record.exc_info).splitlines()[-1]
            parts.append(f'error="{exc}"')
        return " ".join(parts)


def setup(level: str = "INFO", file: Path | None = None) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler
    if file is not None:
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        os.chmod(file, 0o640)
        handler.setFormatter(KeyValueFormatter(with_time=True))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(KeyValueFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
