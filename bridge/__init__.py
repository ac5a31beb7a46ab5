"""posbridge: the register-side application.

Kept import-light: `posbridge --version` must start fast.
"""

__version__ = "0.1.0"
