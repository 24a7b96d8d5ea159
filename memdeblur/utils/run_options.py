"""Options files as every tool reads them: safely, with overrides, checked before anything runs.

``read_options`` is the one way a tool gets an options file: YAML's safe loader
(``memdeblur.utils.safe_load``), ``--force_yml`` overrides applied without evaluating anything,
and then the checks that must come before a single file is written:

* the names that become folders (``name``, each dataset's ``name``) are plain names, so
  ``experiments/<name>``, ``results/<name>`` and ``visualization/<dataset>`` stay where they belong;
* every ``type`` is registered (network, model, dataset, loss, metric), an unknown one named with
  the closest registered name;
* ``num_gpu`` asks for no more GPUs than the machine has, and float16 training (``train.precision``) gets one.
"""
import difflib
import os

import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import plain_name_problem
from memdeblur.utils.precision import refuse_float16_without_gpu
from memdeblur.utils.safe_load import apply_overrides, load_options


def check_plain_name(value, option, path):
    """Refuse a name option that is not a plain name (it would write outside its folder)."""
    problem = plain_name_problem(value)
    if problem:
        raise OptionError(f'{path}: option {option} = {value!r} is used as a folder name, but {problem} (no "/", '
                          'no "..", not absolute).')


def check_registered(name, registry, option, path):
    """Refuse a ``type`` that is not in ``registry``, naming the closest registered one."""
    if name in registry:
        return
    known = sorted(registry.keys())
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f'did you mean {close[0]!r}?' if close else f'registered: {", ".join(known)}.'
    raise OptionError(f'{path}: option {option} = {name!r} is not a registered {registry._name} name; {hint}')


def _types(opt):
    """(option, type name, registry) of every ``type`` an options file names."""
    if 'model_type' in opt:
        yield 'model_type', opt['model_type'], MODEL_REGISTRY
    for section in ('network_g', 'network_d'):
        if isinstance(opt.get(section), dict) and 'type' in opt[section]:
            yield f'{section}:type', opt[section]['type'], ARCH_REGISTRY
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict) and 'type' in dataset:
            yield f'datasets:{phase}:type', dataset['type'], DATASET_REGISTRY
    for key, loss in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(loss, dict) and 'type' in loss:
            yield f'train:{key}:type', loss['type'], LOSS_REGISTRY
    for key, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, dict) and 'type' in metric:
            yield f'val:metrics:{key}:type', metric['type'], METRIC_REGISTRY


def check_options_file(opt, path):
    """The checks of ``read_options`` on an already parsed options dict."""
    if 'name' in opt:
        check_plain_name(opt['name'], 'name', path)
    datasets = opt.get('datasets') or {}
    if not isinstance(datasets, dict):
        raise OptionError(f'{path}: datasets must be a mapping of phases (train, val, test), got {datasets!r}.')
    for phase, dataset in datasets.items():
        if not isinstance(dataset, dict):
            raise OptionError(f'{path}: datasets:{phase} must be a mapping of options, got {dataset!r}.')
        if 'name' in dataset:
            check_plain_name(dataset['name'], f'datasets:{phase}:name', path)
    for option, name, registry in _types(opt):
        check_registered(name, registry, option, path)
    num_gpu = opt.get('num_gpu', 'auto')
    if num_gpu != 'auto':
        if not isinstance(num_gpu, int) or isinstance(num_gpu, bool) or num_gpu < 0:
            raise OptionError(f'{path}: num_gpu must be auto or a number of GPUs, got {num_gpu!r}.')
        if num_gpu > torch.cuda.device_count():
            raise OptionError(f'{path}: num_gpu: {num_gpu}, but this machine has {torch.cuda.device_count()} usable '
                              'GPU(s); write num_gpu: auto (GPUs when present, else the CPU).')
    gpus = torch.cuda.device_count() if num_gpu == 'auto' else num_gpu
    refuse_float16_without_gpu((opt.get('train') or {}).get('precision'), 'cuda' if gpus else 'cpu',
                               f'{path}: train:precision')


def read_options(path, overrides=None):
    """An options file read safely, ``--force_yml`` entries applied, and checked (``check_options_file``).

    Raises:
        OptionError: naming the file (and line or option) of the problem.
    """
    opt = apply_overrides(load_options(path), overrides)
    check_options_file(opt, path)
    return opt


def in_process_training_options(opt, root, num_gpu=0):
    """A training options dict completed as BasicSR's ``parse_options`` completes it for one process, with the
    experiment folders under ``root``: what ``basicsr.models.build_model`` needs outside ``tools/train.py``
    (benchmarks timing a training step, tests). ``num_gpu`` 0 trains on the CPU, 1 on the current GPU."""
    opt = {**opt, 'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'num_gpu': num_gpu,
           'auto_resume': False, 'path': dict(opt.get('path') or {})}
    opt['path'].update({key: os.path.join(root, key)
                        for key in ('experiments_root', 'models', 'training_states', 'log', 'visualization')})
    return opt
