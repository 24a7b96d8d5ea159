"""Everything a run reads, collected as it is named, so that no output of the run may be, hold or lie in any of it.

A tool's outputs are checked against its inputs before anything is written (``memdeblur.utils.outputs``). Passing
the inputs by hand to each check misses the ones nobody thought of (the checkpoint beside ``--summary``, the options
file beside an export's ``-o``), so inputs are collected where they are named instead: a command-line argument
typed ``input_path`` (``memdeblur.cli.command_line``), an options file and the paths it names (``memdeblur.run_options``), a
checkpoint, an exported model or a video opened for reading. ``memdeblur.utils.outputs.check_output_location``
refuses an output that is, holds or lies in any input collected so far in this run, with or without ``--force``.

A run is the block of ``reading_run`` (``memdeblur.cli.command_line.run_tool`` opens one around every tool's ``main``).
Outside a run (the package used as a library) nothing is collected: callers pass their inputs to the output
functions themselves.
"""
import contextlib
import os.path as osp

_collected = None  # {real path: (path as named, what it is)} while a run is on


@contextlib.contextmanager
def reading_run():
    """Collect the inputs named during the block (a fresh collection; an enclosing one is restored after it)."""
    global _collected
    outer, _collected = _collected, {}
    try:
        yield
    finally:
        _collected = outer


def note_input(path, what='an input'):
    """Record ``path`` (a file or folder, existing or not) as read by the current run; ``what`` names it in
    messages (``--ckpt``, ``the options file``). Nothing happens outside a run, or for an empty path."""
    if _collected is None or not path:
        return
    real = osp.realpath(osp.expanduser(str(path)))
    _collected.setdefault(real, (str(path), what))


def run_inputs():
    """(path, what) of every input noted in the current run, in the order named."""
    return list(_collected.values()) if _collected else []
