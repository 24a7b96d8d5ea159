"""Tests of memdeblur/data/."""
