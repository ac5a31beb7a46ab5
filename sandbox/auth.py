"""Register credentials: which logins may call processing, and whether each is blocked.

Registers come from the seed and are never added while serving, so they are read once at
start and a request costs no database round trip to authenticate.
"""

from __future__ import annotations

import hmac

from sandbox.store import Store, password_digest


class Registers:
    def __init__(self, store: Store) -> None:
        with store.lock:
            self._known: dict[str, tuple[str, str]] = {
                r["login"]: (r["password_sha256"], r["status"])
                for r in store.conn.execute("SELECT * FROM registers")
            }

    def status(self, login: str, password: str) -> str | None:
        """'active'/'blocked' for good credentials, None otherwise.

        An unknown login costs the same digest as a known one and the comparison takes
        constant time, so timing does not tell which logins exist.
        """
        known = self._known.get(login)
        if known is None:
            password_digest(login, password)  # same work either way
            return None
        if not hmac.compare_digest(known[0], password_digest(login, password)):
            return None
        return known[1]

    def listing(self) -> list[dict[str, str]]:
        """Logins and their status, never the digests: for the operator's start-up view."""
        return [{"login": k, "status": v[1]} for k, v in sorted(self._known.items())]
