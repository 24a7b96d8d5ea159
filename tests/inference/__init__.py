"""Tests of memdeblur/inference/."""
