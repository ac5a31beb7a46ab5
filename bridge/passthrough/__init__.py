"""Pass-through: an unmodified POS keeps its registrar, printer and scanner; we stand between.

Each `[[passthrough]]` entry offers the POS a virtual port (`drivers.virtual_port`) in front
of a real `[[devices]]` entry, and a relay (`registrar`, `printer`, `scanner`) moves the
bytes, adding the loyalty lines where a receipt closes.  `session` is where the relays meet
the register's cheques; `manager` builds and runs them inside the service.
"""
