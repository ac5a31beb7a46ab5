"""Hardware drivers: transports, scanners, card readers, printers, discovery.

No loyalty knowledge: usable on its own.
"""
