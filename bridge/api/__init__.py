"""The local POS API: HTTP JSON on loopback, token required, OpenAPI served."""
