"""Skip a test whose stand-in is missing here, or fail it where stand-ins are required.

Developers' machines may lack emupos, zbar or umockdev: those tests skip with the
reason.  CI installs them all and sets POSBRIDGE_REQUIRE_STAND_INS=1, so a stand-in that
silently failed to install shows up as a failure instead of a quiet skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    if os.environ.get("POSBRIDGE_REQUIRE_STAND_INS"):
        pytest.fail(f"required stand-in missing: {reason}")
    pytest.skip(reason)
