"""Tests of memdeblur/archs/."""
