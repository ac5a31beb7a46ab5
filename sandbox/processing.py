"""The sandbox's processing: four concerns over one database, put together in one place.

Authentication (`sandbox.auth`), the nine operations (`sandbox.operations`), the catalogue
upload (`sandbox.goods`) and the admin views (`sandbox.admin`) share the store and the
catalogue, so they are built together here; `SandboxServer` holds one `Processing` and
replaces it whole when it starts again on a fresh store.
"""

from __future__ import annotations

from sandbox.admin import Views
from sandbox.auth import Registers
from sandbox.goods import Catalogue
from sandbox.operations import Operations
from sandbox.stats import Stats
from sandbox.store import Store


class Processing:
    def __init__(self, store: Store, stats: Stats) -> None:
        self.registers = Registers(store)
        self.catalogue = Catalogue(store)
        self.operations = Operations(store, store.rules(), self.catalogue, stats)
        self.views = Views(store, self.registers, self.catalogue)
