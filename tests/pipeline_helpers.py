"""Running BasicSR's train/test pipelines in a subprocess, rooted in a temporary folder, and the tools.

``tools/train.py`` and ``tools/test.py`` run ``train_pipeline``/``test_pipeline`` with the
repository as root, so experiments land in the checkout; tests run them the same way
(``memdeblur.pipeline_in_folder``) with a temporary root instead, in a fresh interpreter (BasicSR's logger and
argv parsing are global).
"""
import contextlib
import io
import logging
import os
import runpy
import signal
import subprocess
import sys

import yaml

from memdeblur import run_options

from tests.conftest import REPO_ROOT


def write_options(root, opt, name='options.yml'):
    path = os.path.join(root, name)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def pipeline_command(kind, root, opt_path, *args):
    """The command running BasicSR's ``kind`` (train or test) pipeline as our tools do, rooted in ``root``."""
    return [sys.executable, '-m', 'memdeblur.pipeline_in_folder', kind, str(root), '-opt', str(opt_path), *args]


def run_pipeline(kind, root, opt_path, *args, timeout=600):
    """Run BasicSR's ``kind`` pipeline as ``tools/train.py`` / ``tools/test.py`` do, with ``root`` for experiments/
    and results/, on ``-opt opt_path`` and extra arguments."""
    command = pipeline_command(kind, root, opt_path, *args)
    env = {**os.environ, 'PYTHONPATH': REPO_ROOT}
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, env=env)


def run_tool(tool, *args, cwd=None, fresh=False):
    """Run ``tools/<tool>`` with ``args`` as its command line does; returns a completed process (text output).

    ``fresh``: in a new interpreter. Otherwise the tool's file runs here as ``__main__`` (``runpy``), which
    spares the seconds of imports a new interpreter costs; an exit message becomes stderr and status 1, as
    the interpreter makes it, and an exception that escapes the tool propagates (the test fails with it).
    BasicSR's logger and the SIGTERM handler are restored afterwards.
    """
    path = os.path.join(REPO_ROOT, 'tools', tool)
    argv = [path, *map(str, args)]
    if fresh:
        return subprocess.run([sys.executable, *argv], cwd=cwd or REPO_ROOT, capture_output=True, text=True,
                              env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    import basicsr.utils.logger
    logger = logging.getLogger('basicsr')
    saved = (sys.argv, os.getcwd(), logger.handlers[:], logger.level, dict(basicsr.utils.logger.initialized_logger),
             signal.getsignal(signal.SIGTERM))
    out, err = io.StringIO(), io.StringIO()
    status = 0
    try:
        sys.argv = argv
        os.chdir(cwd or REPO_ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(path, run_name='__main__')
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            err.write(exit_.code + '\n')
        status = 1 if isinstance(exit_.code, str) else exit_.code or 0
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
        logger.handlers[:] = saved[2]
        logger.setLevel(saved[3])
        basicsr.utils.logger.initialized_logger.clear()
        basicsr.utils.logger.initialized_logger.update(saved[4])
        signal.signal(signal.SIGTERM, saved[5])
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def load_options(name):
    with open(os.path.join(REPO_ROOT, 'options', name)) as f:
        return yaml.safe_load(f)


def in_process_training_options(name, tmp_path):
    """options/<name> completed for ``build_model`` in this process: CPU, one process, experiment paths under
    ``tmp_path`` (``memdeblur.run_options.in_process_training_options``)."""
    return run_options.in_process_training_options(load_options(name), str(tmp_path))


def synthetic_training_options(synthetic_root, name, **train_overrides):
    """options/train_memdeblur_synthetic.yml unchanged but for its data, run name and logging."""
    opt = load_options('train_memdeblur_synthetic.yml')
    opt['name'] = name
    opt['num_gpu'] = 0
    opt['datasets']['train'].update(dataroot=str(synthetic_root / 'train'), num_worker_per_gpu=0)
    opt['datasets']['val'].update(dataroot=str(synthetic_root / 'test'))
    opt['train'].update(train_overrides)
    total_iter = opt['train']['total_iter']
    opt['logger'].update(print_freq=1, save_checkpoint_freq=total_iter)
    opt['val']['val_freq'] = total_iter
    return opt


def tiny_training_options(synthetic_root, name, total_iter):
    """The synthetic recipe shrunk to run a few iterations in seconds: 4-frame clips, 32x32 crops, batch 2."""
    opt = synthetic_training_options(synthetic_root, name, total_iter=total_iter)
    opt['datasets']['train'].update(num_frame=4, gt_size=32, batch_size_per_gpu=2)
    return opt


def tool_module(tool):
    """The module holding the command line (``build_parser``) of ``tools/<tool>.py``: the package's command
    (``memdeblur.cli.<tool>``) for the tools that are installed commands, else the script itself."""
    import importlib
    import importlib.util
    name = f'memdeblur.cli.{tool}' if importlib.util.find_spec(f'memdeblur.cli.{tool}') else f'tools.{tool}'
    return importlib.import_module(name)
