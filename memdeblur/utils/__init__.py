"""Helpers shared by the package: registration, checkpoint conversion."""
