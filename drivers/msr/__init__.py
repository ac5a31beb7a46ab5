"""Magnetic stripe card readers: ISO/IEC 7813 track parsing and the reader device."""
