"""Shtrih-M registrars over the vendor's protocol v1 (serial or TCP port 7778).

Modules by concern: `frames` (bytes of a frame), `link` (ENQ/ACK/NAK and retries),
`commands` (request layouts), `replies` (reply parsers), `errors` (codes in plain
words), `printer` (the FiscalPrinter face).
"""

from drivers.fiscal.shtrih.printer import ShtrihFiscalPrinter

__all__ = ["ShtrihFiscalPrinter"]
