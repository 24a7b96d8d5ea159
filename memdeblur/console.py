"""The commands ``pip install`` puts on the PATH, each one tool of ``tools/`` run as ``python tools/<tool>.py`` runs it.

    memdeblur-video    tools/deblur_video.py      memdeblur-export   tools/export_onnx.py
    memdeblur-test     tools/test.py              memdeblur-compare  tools/compare.py
    memdeblur-train    tools/train.py

``setup.py`` installs ``tools/`` as the package ``memdeblur_tools`` (an editable install maps it to the checkout's
folder), so a command and ``python tools/<tool>.py`` run the same code with the same ``--help``. One difference:
``memdeblur-train`` and ``memdeblur-test`` write ``experiments/`` and ``results/`` in the current folder, where
``python tools/train.py`` writes them in the checkout (BasicSR's ``root_path``): an installed package has no
checkout, and its own folder is no place for a user's runs. Options files are not installed; give their path.
"""
import os
from importlib import import_module

from memdeblur.cli import run_basicsr_pipeline, run_tool


def tool_module(name):
    """The module of ``tools/<name>.py``, installed as ``memdeblur_tools.<name>``."""
    return import_module(f'memdeblur_tools.{name}')


def deblur_video():
    """``memdeblur-video``: ``tools/deblur_video.py``."""
    run_tool(tool_module('deblur_video').main)


def export_onnx():
    """``memdeblur-export``: ``tools/export_onnx.py``."""
    run_tool(tool_module('export_onnx').main)


def compare():
    """``memdeblur-compare``: ``tools/compare.py``."""
    run_tool(tool_module('compare').main)


def test():
    """``memdeblur-test``: ``tools/test.py``, with ``results/`` in the current folder."""
    tool = tool_module('test')
    run_basicsr_pipeline(tool.test_pipeline, os.getcwd(), tool.__doc__, training=False)


def train():
    """``memdeblur-train``: ``tools/train.py``, with ``experiments/`` in the current folder."""
    tool = tool_module('train')
    run_basicsr_pipeline(tool.train_pipeline, os.getcwd(), tool.__doc__, training=True)
