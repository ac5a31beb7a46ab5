"""Build the loyalty stack (client, journal, offline client) from a validated config.

The service and every CLI command that talks to processing use this one place, so they
share the same register lock, journal and replay lock files.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.config import Config
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import Connectivity, OfflineClient


def loyalty_client(
    cfg: Config, observer: Callable[[str, str, float], None] | None = None
) -> LoyaltyClient:
    return LoyaltyClient.from_settings(cfg.processing, observer=observer)


def offline_client(
    cfg: Config,
    client: LoyaltyClient | None = None,
    *,
    observer: Callable[[str, str, float], None] | None = None,
    on_change: Callable[[Connectivity], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> OfflineClient:
    """The stack wired at construction: listeners are in place before the first request
    or state change (set afterwards, an early one would go unseen).  `observer` is for a
    client built here; a `client` passed in comes with its own."""
    j = cfg.journal
    return OfflineClient(
        client or loyalty_client(cfg, observer),
        Journal(j.path),
        max_pending=j.max_pending,
        max_age_seconds=j.max_age_hours * 3600,
        probe_min=j.probe_min_seconds,
        probe_max=j.probe_max_seconds,
        on_change=on_change,
        on_warning=on_warning,
        retention_seconds=j.retention_days * 86400,
    )
