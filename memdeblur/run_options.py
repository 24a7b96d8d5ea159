"""Options files as every tool reads them: safely, with overrides, checked before anything runs.

``read_options`` is the one way a tool gets an options file: YAML's safe loader
(``memdeblur.utils.safe_load``), ``--force_yml`` overrides applied without evaluating anything,
and then the checks that must come before a single file is written:

* the names that become folders (``name``, each dataset's ``name``) are plain names, so
  ``experiments/<name>``, ``results/<name>`` and ``visualization/<dataset>`` stay where they belong;
* every ``type`` is registered (network, model, dataset, loss, metric), an unknown one named with
  the closest registered name;
* ``num_gpu`` asks for no more GPUs than the machine has, and float16 training (``train.precision``) gets one;
  ``train.compile`` gets the compiler ``torch.compile`` will run;
* the values of the model's sections (``memdeblur.models.model_options.check_model_sections``): no unknown or
  mistyped key, no value BasicSR's loop would divide by or that would make the run meaningless (``print_freq: 0``,
  ``total_iter: 0``);
* no size that would allocate absurdly (``memdeblur.utils.option_check.MAX_OPTION_BYTES``): the networks, built on
  the meta device with their own option checks (``memdeblur.networks.network_size``), and each dataset's smallest
  batch (``memdeblur.data.dataset_options.check_batch_size``).

The options file and every path it names for the run to read are inputs of the run (``named_input_paths``): no
output may replace them.

``check_training_options`` and ``check_test_options`` add what ``tools/train.py`` and ``tools/test.py`` need
beyond that (BasicSR reads those options without a default).
"""
import difflib
import os

import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from memdeblur.data.dataset_options import check_batch_size
from memdeblur.models.model_options import check_model_sections, check_training_sections
from memdeblur.models.training_step import check_compile_support
from memdeblur.networks.network_size import measure_network
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import check_output_location, plain_name_problem
from memdeblur.utils.precision import refuse_float16_without_gpu
from memdeblur.utils.run_inputs import note_input
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
    named = {}
    for phase, dataset in datasets.items():
        if not isinstance(dataset, dict):
            raise OptionError(f'{path}: datasets:{phase} must be a mapping of options, got {dataset!r}.')
        if 'name' in dataset:
            check_plain_name(dataset['name'], f'datasets:{phase}:name', path)
            if phase != 'train' and dataset['name'] in named:  # results, pictures and best scores go by name
                raise OptionError(f'{path}: datasets:{phase}:name {dataset["name"]!r} is also the name of '
                                  f'datasets:{named[dataset["name"]]}; their results/<name>/{dataset["name"]}_* '
                                  f'files, visualization/{dataset["name"]}/ pictures and best scores would be one '
                                  'set\'s: give each test set its own name.')
            named.setdefault(dataset['name'], phase)
        check_batch_size(phase, dataset, f'{path}: datasets:{phase}')
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
    for section in ('train', 'val'):  # the one place where an options file's precisions meet the device
        refuse_float16_without_gpu((opt.get(section) or {}).get('precision'), 'cuda' if gpus else 'cpu',
                                   f'{path}: {section}:precision')
    check_model_sections(opt, str(path))
    for section in ('network_g', 'network_d'):
        if isinstance(opt.get(section), dict) and 'type' in opt[section]:
            measure_network(opt[section], f'{path}: {section}')
    if (opt.get('train') or {}).get('compile'):
        check_compile_support(torch.device('cuda' if gpus else 'cpu'))


def check_dataset_options(opt, path):
    """Each dataset's options checked by its class (``check_options``, where it has one), as building it would:
    before BasicSR makes the experiment folder. (``tools/check_data.py`` lists these problems with the data's
    instead.)"""
    for phase, dataset in (opt.get('datasets') or {}).items():
        check = getattr(DATASET_REGISTRY.get(dataset['type']), 'check_options', None) if 'type' in dataset else None
        if check is not None:
            try:
                check({'phase': phase.split('_')[0], **dataset})
            except OptionError as err:
                raise OptionError(f'{path}: {err}') from err


def check_training_options(opt, path):
    """What ``tools/train.py`` needs beyond ``check_options_file``: the options BasicSR's training pipeline reads
    without a default (``memdeblur.models.model_options.check_training_sections``), and each dataset's options."""
    check_training_sections(opt, str(path))
    check_dataset_options(opt, path)


def check_test_options(opt, path):
    """What ``tools/test.py`` needs beyond ``check_options_file``: a data set to test, a ``val`` section with
    ``save_img`` and at least one metric, and each dataset's options.

    A test without metrics would write no table, no report and no word about it (``val: metrics: ~``); the
    table is what ``tools/test.py`` is for, so it is refused, pointing to ``tools/deblur_video.py`` for
    restoring without scoring.
    """
    if not opt.get('datasets'):
        raise OptionError(f'{path}: testing needs a datasets section with at least one test set.')
    val = opt.get('val')
    if not isinstance(val, dict) or val.get('save_img') is None:
        raise OptionError(f'{path}: testing needs a val section with save_img: true or false (save the restored '
                          'frames) and the metrics to score.')
    if not val.get('metrics'):
        raise OptionError(f'{path}: val:metrics is {val.get("metrics")!r}: the test would score nothing and write no '
                          'table; name at least one metric (e.g. psnr: {type: calculate_psnr, crop_border: 0}), or '
                          'restore without scoring with tools/deblur_video.py.')
    check_dataset_options(opt, path)


def read_options(path, overrides=None):
    """An options file read safely, ``--force_yml`` entries applied, and checked (``check_options_file``).

    Raises:
        OptionError: naming the file (and line or option) of the problem.
    """
    note_input(path, 'the options file')
    opt = apply_overrides(load_options(path), overrides)
    check_options_file(opt, path)
    for option, value in named_input_paths(opt):
        note_input(value, f'{path}\'s {option}')
    return opt


def named_input_paths(opt):
    """(option, path) of every file or folder an options file names for the run to read: the weights and the
    resume state (``path:pretrain_network_*``, ``path:resume_state``), the data (each dataset's ``dataroot*`` and
    ``meta_info_file``). They are inputs of the run (``memdeblur.utils.run_inputs``) from the moment the options
    are read, before any output is planned."""
    for key, value in (opt.get('path') or {}).items():
        if isinstance(value, str) and (key.startswith('pretrain_network') or key == 'resume_state'):
            yield f'path:{key}', value
    for phase, dataset in (opt.get('datasets') or {}).items():
        for key, value in (dataset.items() if isinstance(dataset, dict) else ()):
            if isinstance(value, str) and (key.startswith('dataroot') or key == 'meta_info_file'):
                yield f'datasets:{phase}:{key}', value


def check_run_outputs(opt, root, training, name=None):
    """Refuse, before BasicSR's pipeline starts, a train or test run whose files would be, hold or lie in its own
    inputs (``memdeblur.utils.run_inputs``): the results folder a test replaces, the experiment folder a new
    training archives, and every checkpoint and state a training run will save (``planned_training_files``), so
    that no run stops at its first checkpoint, or replaces the weights it started from.

    Args:
        opt (dict): The options, read by ``read_options``.
        root (str): The folder ``experiments/`` and ``results/`` go to.
        training (bool): A training run (else a test).
        name (str | None): The run's name as BasicSR will use it (default: ``opt['name']``).
    """
    name = name or opt['name']
    if not training:
        check_output_location(os.path.join(root, 'results', name))
        return
    experiment = os.path.join(root, 'experiments', name)
    resuming = opt.get('auto_resume') or (opt.get('path') or {}).get('resume_state')
    if not resuming:
        check_output_location(experiment)
    for path in planned_training_files(opt, experiment):
        check_output_location(path)


def planned_training_files(opt, experiment):
    """The checkpoints and states a training run saves under ``experiment``: every ``save_checkpoint_freq``-th
    iteration after the one it resumes from (``path:resume_state``'s), and the latest network at the end."""
    state = (opt.get('path') or {}).get('resume_state')
    stem = os.path.splitext(os.path.basename(state))[0] if isinstance(state, str) else ''
    start = int(stem) if stem.isdigit() else 0
    every, total = opt['logger']['save_checkpoint_freq'], opt['train']['total_iter']
    for iteration in range(start + 1, total + 1):
        if iteration % every == 0:
            yield os.path.join(experiment, 'models', f'net_g_{iteration}.pth')
            yield os.path.join(experiment, 'training_states', f'{iteration}.state')
    yield os.path.join(experiment, 'models', 'net_g_latest.pth')


def in_process_training_options(opt, root, num_gpu=0):
    """A training options dict completed as BasicSR's ``parse_options`` completes it for one process, with the
    experiment folders under ``root``: what ``basicsr.models.build_model`` needs outside ``tools/train.py``
    (benchmarks timing a training step, tests). ``num_gpu`` 0 trains on the CPU, 1 on the current GPU."""
    opt = {**opt, 'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'num_gpu': num_gpu,
           'auto_resume': False, 'path': dict(opt.get('path') or {})}
    opt['path'].update({key: os.path.join(root, key)
                        for key in ('experiments_root', 'models', 'training_states', 'log', 'visualization')})
    return opt
