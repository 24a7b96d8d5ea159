"""The installed commands (setup.py's console entry points) are the commands of ``memdeblur.cli`` that
``python tools/<tool>.py`` runs, with ``experiments/`` and ``results/`` in the folder they are run from."""
import ast
import os
import os.path as osp
import subprocess
import sys
from importlib import import_module, metadata

import pytest

from memdeblur.utils.safe_load import load_options
from tests.conftest import REPO_ROOT

TOOL_OF_COMMAND = {'memdeblur-video': 'deblur_video', 'memdeblur-test': 'test', 'memdeblur-train': 'train',
                   'memdeblur-export': 'export_onnx', 'memdeblur-compare': 'compare'}


def declared_commands():
    """{command: 'module:function'} of the console_scripts in setup.py, read from its text."""
    with open(osp.join(REPO_ROOT, 'setup.py')) as f:
        tree = ast.parse(f.read())
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup')
    entry_points = ast.literal_eval(next(k.value for k in call.keywords if k.arg == 'entry_points'))
    return dict(tuple(part.strip() for part in line.split('=')) for line in entry_points['console_scripts'])


def test_setup_declares_the_installed_commands_and_the_venv_has_them():
    """Each command is ``memdeblur.cli.<tool>:run`` (no second copy of ``tools/`` installed), installed in the venv,
    and ``tools/<tool>.py`` is a wrapper of a few lines around the same command."""
    declared = declared_commands()
    assert set(declared) == set(TOOL_OF_COMMAND)
    for command, target in declared.items():
        assert target == f'memdeblur.cli.{TOOL_OF_COMMAND[command]}:run', command
        assert callable(metadata.EntryPoint(command, target, 'console_scripts').load()), command
        assert osp.isfile(osp.join(osp.dirname(sys.executable), command)), f'{command} not installed: pip install -e .'
        with open(osp.join(REPO_ROOT, 'tools', f'{TOOL_OF_COMMAND[command]}.py')) as f:
            wrapper = f.read()
        assert f'from memdeblur.cli.{TOOL_OF_COMMAND[command]} import' in wrapper and len(wrapper.splitlines()) <= 8
    assert not [name for name in metadata.distribution('memdeblur').read_text('top_level.txt').split()
                if name != 'memdeblur']


@pytest.mark.parametrize('command', sorted(TOOL_OF_COMMAND))
def test_each_command_prints_its_tools_help(command, monkeypatch, capsys):
    function = metadata.EntryPoint(command, declared_commands()[command], 'console_scripts').load()
    monkeypatch.setattr(sys, 'argv', [command, '--help'])
    with pytest.raises(SystemExit) as exit_:
        function()
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    summary = import_module(f'memdeblur.cli.{TOOL_OF_COMMAND[command]}').__doc__.strip().splitlines()[0]
    assert shown.startswith(f'usage: {command} ') and summary in shown


def test_the_installed_script_runs_from_any_folder(tmp_path):
    script = osp.join(osp.dirname(sys.executable), 'memdeblur-video')
    shown = subprocess.run([script, '--help'], cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert 'Deblur your own videos' in shown.stdout and '--ckpt' in shown.stdout


@pytest.mark.parametrize('command, kind', (('test', 'results_root'), ('train', 'experiments_root')))
def test_runs_go_to_the_folder_the_command_is_run_from(command, kind, tmp_path, monkeypatch):
    """BasicSR's own options parsing, run in the pipeline's place, says where the run would write."""
    opt_file = osp.join(REPO_ROOT, 'options', f'{command}_memdeblur_synthetic.yml')
    tool = import_module(f'memdeblur.cli.{command}')
    paths = {}

    def pipeline(root):  # the pipeline's first step; trusted_pipeline hands it the options file read safely
        paths.update(import_module(f'basicsr.{command}').parse_options(root, is_train=command == 'train')[0]['path'])

    monkeypatch.setattr(tool, f'{command}_pipeline', pipeline)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', [f'memdeblur-{command}', '-opt', opt_file])
    with pytest.raises(SystemExit) as exit_:
        tool.run()
    assert exit_.value.code == 0
    folder = 'results' if command == 'test' else 'experiments'
    assert paths[kind] == osp.join(str(tmp_path), folder, load_options(opt_file)['name'])


def test_every_folder_of_the_package_is_installed():
    """A folder of modules without ``__init__.py`` is left out of a wheel by ``find_packages`` (an editable install
    hides it): every folder of ``memdeblur/`` holding modules is a package that ``setup.py`` installs."""
    from setuptools import find_packages
    root = osp.join(REPO_ROOT, 'memdeblur')
    folders = {osp.relpath(folder, REPO_ROOT).replace(osp.sep, '.') for folder, _, files in os.walk(root)
               if any(name.endswith('.py') for name in files)}
    assert folders == set(find_packages(REPO_ROOT, include=['memdeblur', 'memdeblur.*']))
