"""Files only the service user may read: the journal, the open cheques, the catalogue state.

Each holds card numbers or what processing was told, so each is created 0600 (and its
directory if missing) before SQLite opens it, and SQLite's -wal and -shm companions are
created under a 0077 umask so they are never readable by others either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def create_private(path: Path, *, nofollow: bool = False) -> None:
    """Create `path` (and its directory) if missing, and make it 0600 either way.

    `nofollow` refuses a symbolic link at `path` (OSError ELOOP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0)
    os.close(os.open(path, flags, 0o600))
    os.chmod(path, 0o600)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created meanwhile (SQLite's -wal and -shm) are the owner's only."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
