"""The lowest layer, shared by every package and knowing none of them: option values checked, files read safely and
written whole or not at all, padding and windows in time, precision and process facts (peak memory, the allocator,
timing), errors, registration by import."""
