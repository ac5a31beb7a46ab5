"""The service's memory: what a purchase never needs is not imported (bench/service_rss.py).

Each check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh(code: str) -> object:
    """Run `code` in a new interpreter of this venv; it prints one JSON value."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_service_starts_without_biip_or_the_yaml_printer_database() -> None:
    # biip builds all its GS1 tables on import (~16 MB); escpos.capabilities parses the
    # whole printer database with PyYAML (~5.5 MB): neither is needed to sell
    loaded = fresh(
        "import sys, json, bridge.server\n"
        "print(json.dumps([m for m in ('biip', 'yaml', 'escpos.capabilities', 'stdnum', 'pydoc')"
        " if m in sys.modules]))"
    )
    assert loaded == []


def test_a_register_without_a_registrar_never_loads_the_fiscal_desk() -> None:
    loaded = fresh(
        "import sys, json, bridge.server\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bridge.fiscal.')"
        " or m.startswith('drivers.fiscal.shtrih'))))"
    )
    assert loaded == ["bridge.fiscal.service"]


def test_check_digits_load_stdnum_on_the_first_scan() -> None:
    found = fresh(
        "import sys, json\n"
        "from bridge.barcodes import classify\n"
        "before = 'stdnum' in sys.modules\n"
        "c = classify('4006381333931')\n"
        "print(json.dumps([before, 'stdnum' in sys.modules, c.kind, c.gtin]))"
    )
    assert found == [False, True, "gtin", "04006381333931"]


def test_a_scan_still_loads_biip_when_it_needs_it() -> None:
    found = fresh(
        "import sys, json\n"
        "from bridge.barcodes import classify\n"
        "before = 'biip' in sys.modules\n"
        "c = classify(']d2' + '0104607004650104215ABCDE' + chr(29) + '93ABCD')\n"
        "print(json.dumps([before, 'biip' in sys.modules, c.kind]))"
    )
    assert found[0] is False and found[1] is True
    assert found[2] != "unknown"


def test_one_printer_profile_is_the_databases_own_without_pyyaml() -> None:
    found = fresh(
        "import sys, json\n"
        "from drivers.printer.profile import PrinterProfile, profile_names\n"
        "p = PrinterProfile.named('default')\n"
        "names = profile_names()\n"
        "lean = [m for m in ('yaml', 'escpos.capabilities') if m in sys.modules]\n"
        "from escpos.capabilities import CAPABILITIES\n"
        "same = p == PrinterProfile.from_data('default', CAPABILITIES['profiles']['default'])\n"
        "print(json.dumps([lean, same, names == sorted(CAPABILITIES['profiles'])]))"
    )
    assert found == [[], True, True]


def test_a_plain_http_client_builds_no_tls_context() -> None:
    from bridge.loyalty.client import LoyaltyClient

    plain = LoyaltyClient("http://127.0.0.1:9/publicapi", "r", "s")
    secure = LoyaltyClient("https://127.0.0.1:9/publicapi", "r", "s")
    try:
        assert plain._network is not None and secure._network is not None
        assert plain._network._pool._ssl_context is None
        assert secure._network._pool._ssl_context is not None
    finally:
        plain.close()
        secure.close()


def test_a_command_line_imports_only_the_command_it_runs() -> None:
    # the service is `posbridge run`: the other commands' modules are code it never runs
    found = fresh(
        "import sys, json\n"
        "from bridge.cli import build_parser, _command_named\n"
        "named = _command_named(['--config', 'demo', '--log-level', 'ERROR', 'run'])\n"
        "args = build_parser(named).parse_args(['--config', 'demo', 'run'])\n"
        "others = sorted(m for m in sys.modules if m.startswith('bridge.commands.')"
        " and m != 'bridge.commands.run')\n"
        "print(json.dumps([named, args._module, others]))"
    )
    assert found == ["run", "bridge.commands.run", []]


def test_help_still_lists_every_command() -> None:
    from bridge.cli import COMMANDS, build_parser

    text = build_parser("run").format_help()
    assert all(name in text for name in COMMANDS)
