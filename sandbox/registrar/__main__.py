"""`python -m sandbox.registrar`: the registrar emulator in the foreground (see cli)."""

from __future__ import annotations

from sandbox.registrar.cli import main

raise SystemExit(main())
