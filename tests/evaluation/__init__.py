"""Tests of memdeblur/evaluation/."""
