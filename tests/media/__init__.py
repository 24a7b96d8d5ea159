"""Tests of memdeblur/media/."""
