"""The lowest layer, shared by every package: options read safely and checked, checkpoints, what networks declare
about themselves (``network_traits``), padding and windows in time, outputs written whole or not at all,
precision and memory facts, registration by import."""
