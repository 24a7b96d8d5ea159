"""Tests of memdeblur/utils/."""
