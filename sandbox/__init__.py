"""A real processing server speaking the v1.2 contract, for the demo, rehearsals and tests."""
