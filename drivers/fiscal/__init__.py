"""Fiscal registrars (ККТ): the device-neutral face in `base`, one module per vendor."""
