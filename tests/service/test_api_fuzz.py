"""schemathesis against our own OpenAPI document: whatever it sends, never a 5xx.

Driven with plain hypothesis over schemathesis' strategies (its pytest plugin does
not load under the pytest version we use); every operation but the endless event
stream gets its examples.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bridge.server import Service
from tests.service.conftest import TOKEN

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed")


def test_no_server_errors(service: Service) -> None:
    schema = schemathesis.openapi.from_url(
        f"{service.url}/openapi.json", headers={"X-Posbridge-Token": TOKEN}
    )
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path != "/v1/events"]
    assert len(operations) >= 12
    failures: list[str] = []

    for operation in operations:

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=service.url, headers={"X-Posbridge-Token": TOKEN})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} "
                    f"{response.text[:200]}"
                )
            elif response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json")

        run()
    assert not failures, failures
