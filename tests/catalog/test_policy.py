"""The push policy without the command: a report object in, nothing printed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.catalog import policy
from bridge.catalog.report import PushOutcome
from bridge.catalog.validate import RowError
from bridge.config import load
from bridge.loyalty.sequencer import RegisterLock
from tests.catalog.helpers import row, write_catalogue, write_csv


class Recorded(policy.PushEvents):
    def __init__(self) -> None:
        self.errors: list[RowError] = []
        self.sent: list[int] = []

    def row_error(self, error: RowError) -> None:
        self.errors.append(error)

    def upload_started(self, total: int) -> Callable[[int], None]:
        return self.sent.append


def test_push_returns_a_report_and_status_reads_it_back(cfg: Path, tmp_path: Path) -> None:
    processing = load(cfg).processing
    state = tmp_path / "state.sqlite"
    goods = write_catalogue(tmp_path / "g.csv", range(1500))
    events = Recorded()
    with policy.push(policy.PushOptions(str(goods)), state, processing, events) as report:
        assert report.outcome is PushOutcome.DONE
        assert report.plan is not None and (report.plan.new, report.plan.chunks) == (1500, 2)
        assert report.upload is not None and report.upload.complete
        assert report.to_json()["accepted"] == 1500
    assert events.sent == [1000, 500] and events.errors == []

    seen = policy.status(state, processing, None, None, policy.PushEvents())
    assert seen.items_known == 1500 and seen.for_this_processing and not seen.incomplete
    assert seen.to_json()["itemsKnown"] == 1500


def test_invalid_rows_stop_the_push_and_a_held_lock_refuses_a_second(
    cfg: Path, tmp_path: Path
) -> None:
    processing = load(cfg).processing
    state = tmp_path / "state.sqlite"
    bad = write_csv(tmp_path / "bad.csv", [row(1), ["G2", "", "", "g", "1"]])
    events = Recorded()
    with policy.push(policy.PushOptions(str(bad)), state, processing, events) as report:
        assert report.outcome is PushOutcome.INVALID_ROWS and report.plan is None
        assert (report.invalid, report.problems) == (1, len(events.errors)) and events.errors
    assert events.sent == []

    held = RegisterLock(state.with_name(state.name + ".lock"))
    assert held.acquire(wait=False)
    try:
        with pytest.raises(policy.CatalogError, match="another catalog push is running"):
            with policy.push(policy.PushOptions(str(bad)), state, processing, events):
                pass
    finally:
        held.close()
