"""Tests of memdeblur/models/."""
