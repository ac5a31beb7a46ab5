"""Arithmetic of the rules, apart from HTTP and SQLite."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.rules import Rules, SeedError, Window, allocate
from sandbox.server import SandboxServer

cents = st.integers(min_value=0, max_value=10**9).map(lambda c: Decimal(c) / 100)


@given(total=cents, weights=st.lists(cents, min_size=1, max_size=30))
def test_allocate_splits_exactly_and_proportionally(total: Decimal, weights: list[Decimal]) -> None:
    parts = allocate(total, weights)
    whole = sum(weights, Decimal(0))
    if whole == 0 or total == 0:
        assert all(p == 0 for p in parts)
        return
    assert sum(parts, Decimal(0)) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - total * weight / whole) < Decimal("0.01")


@pytest.mark.parametrize(
    ("clock", "inside"),
    [
        ("21:59:59", False),
        ("22:00:00", True),
        ("23:59:59", True),
        ("00:00:00", True),
        ("01:59:59", True),
        ("02:00:00", False),
        ("12:00:00", False),
    ],
)
def test_window_across_midnight(clock: str, inside: bool) -> None:
    window = Window(time(22), time(2))
    assert window.contains(datetime.fromisoformat(f"2026-11-29T{clock}")) is inside


def test_rules_survive_a_round_trip_through_the_database_form() -> None:
    rules = Rules.from_seed(
        {
            "accrual": {"default": "2", "groups": {"a": "3"}},
            "offers": [
                {"kind": "discount", "group": "a", "percent": "7", "from": "09:00", "to": "10:00"}
            ],
        }
    )
    assert Rules.from_seed(rules.to_seed()) == rules


@pytest.mark.parametrize(
    ("seed", "named"),
    [
        ('[[offers]]\nkind = "free beer"\n', "kind"),
        ('[[offers]]\nkind = "discount"\nfrom = "25:00"\n', "from"),
        ('[accrual]\ndefault = "lots"\n', "accrual.default"),
        ('[[cards]]\nnumber = "2775000000013"\n', "EAN-13"),
        ("not = [toml", "cannot read seed"),
    ],
)
def test_bad_seed_is_refused_naming_the_fault(tmp_path: Path, seed: str, named: str) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(seed)
    with pytest.raises(SeedError, match=named):
        SandboxServer(tmp_path / "db.sqlite", seed=path)
