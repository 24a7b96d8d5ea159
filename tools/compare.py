"""``python tools/compare.py``: the command of ``memdeblur.cli.compare`` (its docstring and ``--help`` say what it does)."""
from memdeblur.cli.compare import run

if __name__ == '__main__':
    run()
