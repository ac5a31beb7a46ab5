"""The register service: devices, cheques and the loyalty client, running all day.

`register` ties them together; `cheque` is one cheque, `cheques` the book of them and
`cheque_store` their file; `devices` the configured scanners, readers and printers;
`events` fans device and loyalty events out to every POS on /v1/events.  The process
around it (the register plus the POS API under uvicorn) is `bridge.server`, above both
this package and `bridge.api`.
"""
