"""``python tools/deblur_video.py``: the command of ``memdeblur.cli.deblur_video`` (its docstring and ``--help`` say what it does)."""
from memdeblur.cli.deblur_video import run

if __name__ == '__main__':
    run()
