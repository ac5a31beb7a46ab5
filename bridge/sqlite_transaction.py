"""One way to run an SQLite transaction, for the journal and the catalogue state alike.

Both open their connections with `isolation_level=None` (we say where transactions
start, the sqlite3 module does not guess), so each write names its own BEGIN and
COMMIT.  Written by hand four times, they differed in what a failure left behind: an
open transaction after KeyboardInterrupt, or a ROLLBACK error hiding the disk-full
error that caused it.  Here a failure of any kind rolls back when a transaction is
still open (a failed COMMIT included) and re-raises the original error.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def transaction(
    conn: sqlite3.Connection, *, immediate: bool = True
) -> Iterator[sqlite3.Connection]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception (KeyboardInterrupt too).

    `immediate` takes the write lock at BEGIN, so a writer waits (busy timeout) at the
    start rather than failing half-way; work on temporary tables only passes False, so
    a dry run does not queue behind a push that holds the file's write lock.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            with contextlib.suppress(sqlite3.Error):  # the original error is the one to report
                conn.execute("ROLLBACK")
        raise
