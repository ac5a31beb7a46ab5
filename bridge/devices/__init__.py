"""The configured peripherals: which kind may use which connection, and the one place a
`[[devices]]` entry becomes its driver (`bridge.devices.build`).

`supported` is plain data that the config reads without loading any driver; `build`
loads the drivers and is what the service, `doctor`, `devices`, `scan-test` and
`test-print` all go through.
"""
