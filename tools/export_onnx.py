"""``python tools/export_onnx.py``: the command of ``memdeblur.cli.export_onnx`` (its docstring and ``--help`` say what it does)."""
from memdeblur.cli.export_onnx import run

if __name__ == '__main__':
    run()
