"""Fiscal receipts for confirmed cheques: the sale with the loyalty lines inside it.

`sale` composes what the registrar prints from a cheque and the POS's request, `records`
keeps each cheque's fiscal state on disk before the device is touched (so a retry never
prints a second fiscal document), and `desk` runs one print with the failure rules the
POS relies on.  The device itself is any `drivers.fiscal.base.FiscalPrinter`.
"""
