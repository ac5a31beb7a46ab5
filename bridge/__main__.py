"""`python -m bridge` is `posbridge`."""

from bridge.cli import main

raise SystemExit(main())
