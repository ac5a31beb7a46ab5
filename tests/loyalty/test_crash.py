"""SIGKILL the register at random points while it journals offline and while it replays.

The register runs in child processes (see `crash_child`); processing is the real
sandbox on loopback.  At the end processing must hold exactly what the same shift sold
online leaves: every ledger and every purchase equal, each step applied once.  A kill
after processing applied a step but before the journal marked it done legitimately
sends that step again; processing must recognise it by its operationId, so the sandbox's
duplicate count must equal the number of such resends, which the campaign counts from
processing's own view of the purchase before each restart.
"""

from __future__ import annotations

import random
from pathlib import Path

from sandbox.server import SandboxServer
from tests.loyalty.crash_child import crash_campaign, final_state, online_reference

SEED, PURCHASES = 11, 40


def test_thirty_kills_lose_nothing_and_double_nothing(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    out = crash_campaign(
        sandbox_server,
        tmp_path,
        seed=SEED,
        n=PURCHASES,
        sell_kills=16,
        drain_kills=16,
        rng=random.Random(SEED),
    )
    assert out.kills >= 30, out
    assert out.sell_kills >= 12 and out.drain_kills >= 12, out
    assert out.overlaps == 0, out
    assert out.duplicates == out.resends_expected, out
    assert final_state(sandbox_server, SEED, PURCHASES) == online_reference(
        tmp_path, SEED, PURCHASES
    )
