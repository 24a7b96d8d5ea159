"""Tests of the command lines in tools/, end to end."""
