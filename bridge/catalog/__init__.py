"""Pushing the shop's nomenclature to processing, incrementally and resumably.

The file is streamed row by row into a temporary SQLite table, compared there with
what processing already accepted (the local state file), and only the difference is
uploaded, one contract-sized chunk at a time.  Nothing scales with the catalogue in
memory except one chunk, so a 100,000-item file pushes like a 100-item one.
"""
