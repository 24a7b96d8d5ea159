"""Tests of memdeblur/runtime/ (and the export, memdeblur/export/)."""
