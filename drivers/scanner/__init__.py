"""Barcode scanners: serial framing, AIM identifiers, keyboard-wedge decoding, layout repair."""
