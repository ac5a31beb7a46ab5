"""Build the loyalty stack (client, journal, offline client) from a validated config.

The service and every CLI command that talks to processing use this one place, so they
share the same register lock, journal and replay lock files.
"""

from __future__ import annotations

from bridge.config import Config
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import OfflineClient


def loyalty_client(cfg: Config) -> LoyaltyClient:
    return LoyaltyClient.from_settings(cfg.processing)


def offline_client(cfg: Config, client: LoyaltyClient | None = None) -> OfflineClient:
    j = cfg.journal
    return OfflineClient(
        client or loyalty_client(cfg),
        Journal(j.path),
        max_pending=j.max_pending,
        max_age_seconds=j.max_age_hours * 3600,
        probe_min=j.probe_min_seconds,
        probe_max=j.probe_max_seconds,
        retention_seconds=j.retention_days * 86400,
    )
