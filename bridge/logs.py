"""One structured line per event, to journald (via stderr) or a rotating file.

Lines are `key=value` pairs a technician can grep and a log shipper can parse.  Under
systemd (JOURNAL_STREAM set) the timestamp is left to journald.  Nothing here prints
secrets: callers pass masked card numbers, and the config is never logged whole; any
card number that slips through (a Luhn-valid run of 13-19 digits) is masked on the way out.
"""

from __future__ import annotations

import errno
import io
import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

from drivers.masking import mask_text

LOG_FILE_MODE = 0o640
# what a value may not carry raw: control characters (NUL, ESC, CR: they rewrite or hide
# what a terminal shows), line separators, and the quote and backslash of the format
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029"\\\\]')
_SHORT = {'"': '\\"', "\\": "\\\\", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match[0]
    return _SHORT.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape(text: str) -> str:
    return _UNSAFE.sub(_escaped, text)


def _value(text: str) -> str:
    """A key=value value: escaped, quoted when it holds a blank, '=' or an escape."""
    text = escape(text.replace("\n", " | "))
    return f'"{text}"' if not text or any(c in text for c in " =\\") else text


class LogFileError(Exception):
    """The --log-file cannot be used; the message says why."""


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every file, the first and each one a rotation starts, is created 0640 and never
    opened through a symbolic link (a planted link would make the service write where it
    points)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(
            self.baseFilename,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
            LOG_FILE_MODE,
        )
        try:
            if os.fstat(fd).st_mode & 0o777 != LOG_FILE_MODE:
                os.fchmod(fd, LOG_FILE_MODE)
        except OSError:
            os.close(fd)
            raise
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


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
        parts.append(f"msg={_value(record.getMessage())}")
        if record.exc_info:
            exc = self.formatException(record.exc_info).splitlines()[-1]
            parts.append(f'error="{escape(exc)}"')
        return mask_text(" ".join(parts))  # card numbers, wherever in the line


class LibraryChatter(logging.Filter):
    """python-escpos logs "File printer enabled" and the like on the root logger: drop its
    chatter below WARNING, and name it `escpos` when it has something to say."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "root" and f"{os.sep}escpos{os.sep}" in record.pathname:
            if record.levelno < logging.WARNING:
                return False
            record.name = "escpos"
        return True


def setup(level: str = "INFO", file: Path | None = None) -> None:
    handler: logging.Handler
    if file is not None:
        try:
            handler = PrivateRotatingFileHandler(
                file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LogFileError(
                    f"log file {file} is a symbolic link; give the file itself"
                ) from None
            raise LogFileError(f"cannot open log file {file}: {exc.strerror}") from None
        handler.setFormatter(KeyValueFormatter(with_time=True))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(KeyValueFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    handler.addFilter(LibraryChatter())
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
