"""posbridge: the register-side application (kept import-light: `posbridge --version` must start fast)."""

__version__ = "0.1.0"
