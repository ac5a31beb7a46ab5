"""A real processing server speaking the v1.2 contract, for the demo, rehearsals and tests.

`SandboxServer(db_path, seed=None, host, port, latency)` serves the contract under
`{url}` = `http://HOST:PORT/publicapi` from a SQLite file seeded from `sandbox/seed.toml`
(see its header).  `posbridge sandbox` (sandbox.cli) runs it in the foreground.
Loopback-only admin views: GET /sandbox/status, /sandbox/ledger/{card},
/sandbox/purchases/{purchaseId}; POST /sandbox/reset-counters.

One module per concern, so a question has one place to look: `server` (HTTP, Basic auth
header, overlaps), `auth` (register credentials), `operations` (the nine steps, stored for
replay), `pricing` and `rules` (money), `ledger` (cards, purchases, bonus entries), `goods`
(catalogue upload), `admin` (read-only views), `answers` (refusals and error bodies),
`processing` (puts them together), `store` and `stats`.

From `bridge` only `bridge.loyalty.protocol` is imported: client and server validate
against the same wire models.
"""
