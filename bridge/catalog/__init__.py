"""Pushing the shop's nomenclature to processing, incrementally and resumably.

The file is streamed row by row into a temporary SQLite table, compared there with
what processing already accepted (the local state file), and only the difference is
uploaded, one contract-sized chunk at a time.  Nothing scales with the catalogue in
memory except one chunk, so a 100,000-item file pushes like a 100-item one.

`policy` decides what a push may do and hands back a `report`; `push` holds the diff
and the upload, `state` the record of what processing accepted, `source` and `validate`
read and check rows, `progress` draws the upload's progress.
"""

STATE_NAME = "catalog-state.sqlite"  # the default state file, next to the journal
