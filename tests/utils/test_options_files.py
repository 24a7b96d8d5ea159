"""Options files: duplicate keys, alias bombs and values BasicSR's loop cannot run are refused when the file is read,
naming the file and what is wrong, before anything is logged, copied or written."""
import resource
import time
from pathlib import Path

import pytest
import yaml

from memdeblur.utils.option_check import OptionError
from memdeblur.run_options import check_test_options, check_training_options, read_options
from memdeblur.utils.safe_load import MAX_EXPANDED_NODES, load_options, parse_override
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import run_tool, write_options

OPTIONS = sorted(Path(REPO_ROOT, 'options').rglob('*.yml'))


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr and result.stderr.startswith('error: '), result.stderr
    assert all(word in result.stderr for word in words), result.stderr


@pytest.mark.parametrize('text, key, lines', [
    ('name: x\npath:\n  pretrain_network_g: a.pth\ntrain:\n  total_iter: 2\npath:\n  strict_load_g: true\n',
     "'path'", (2, 6)),
    ('name: x\nval:\n  save_img: true\nval:\n  save_img: false\n', "'val'", (2, 4)),
    ('train:\n  optim_g:\n    lr: 1\n    betas: [0.9, 0.99]\n    lr: 2\n', "'lr'", (3, 5)),
    ('datasets:\n  - {name: a, name: b}\n', "'name'", (2, 2)),
    ('flags:\n  true: 1\n  yes: 2\n', 'True', (2, 3)),  # YAML 1.1: both are the boolean true
])
def test_a_key_given_twice_is_refused_naming_the_file_the_key_and_both_lines(tmp_path, text, key, lines):
    path = tmp_path / 'twice.yml'
    path.write_text(text)
    with pytest.raises(OptionError) as refused:
        load_options(path)
    message = str(refused.value)
    assert message.startswith(f'{path}, line {lines[1]}: the key {key} is given twice'), message
    assert f'lines {lines[0]} and {lines[1]}' in message and 'unique keys' in message


def test_merge_keys_still_work_and_an_explicit_key_overrides_the_merged_one(tmp_path):
    path = tmp_path / 'merged.yml'
    path.write_text('base: &base\n  lr: 1\n  beta: 0.9\nfine: &fine\n  <<: *base\n  beta: 0.5\n'
                    'train:\n  <<: [*fine, *base]\n  lr: 2\nval: {<<: *base}\n')
    assert load_options(path) == {'base': {'lr': 1, 'beta': 0.9}, 'fine': {'lr': 1, 'beta': 0.5},
                                  'train': {'lr': 2, 'beta': 0.5}, 'val': {'lr': 1, 'beta': 0.9}}


def test_force_yml_values_with_a_key_given_twice_are_refused():
    with pytest.raises(OptionError, match=r"--force_yml .*the key 'a' is given twice"):
        parse_override('val:metrics={a: 1, a: 2}')


def billion_laughs(path, levels=9):
    """The classic: 9 levels of 9 aliases to the level below, 9**9 (387 million) strings from a few hundred bytes."""
    lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    lines += [f'a{i}: &a{i} [{", ".join([f"*a{i - 1}"] * 9)}]' for i in range(1, levels)]
    path.write_text('\n'.join(lines) + '\n')
    return path


def merge_bomb(path, levels=40):
    """Merge keys doubling at every level: PyYAML's flattening would build 2**40 key/value pairs."""
    lines = ['m0: &m0 {k0: 1, k1: 2}']
    lines += [f'm{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], z{i}: 1}}' for i in range(1, levels)]
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize('bomb', [billion_laughs, merge_bomb])
def test_alias_bombs_are_refused_quickly_and_with_little_memory(tmp_path, bomb):
    path = bomb(tmp_path / 'laughs.yml')
    assert path.stat().st_size < 2000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(OptionError, match=rf'^{path}: its aliases \(\*name\) expand to more than '
                       rf'{MAX_EXPANDED_NODES} values'):
        load_options(path)
    assert time.perf_counter() - start < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 50 * 1024  # KiB: under 50 MiB


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / 'recursive.yml'
    path.write_text('name: x\nlist: &a\n  - 1\n  - *a\n')
    with pytest.raises(OptionError, match=rf'^{path}, line 2: an alias refers to a value that contains it'):
        load_options(path)


def test_tools_refuse_an_alias_bomb_in_one_line(tmp_path):
    path = billion_laughs(tmp_path / 'laughs.yml')
    assert_one_line_error(run_tool('test.py', '-opt', path), str(path), 'expand to more than')
    assert_one_line_error(run_tool('check_data.py', '-opt', path, '--no-progress'), str(path), 'expand to more than')


@pytest.mark.parametrize('path', OPTIONS, ids=[str(p.relative_to(REPO_ROOT)) for p in OPTIONS])
def test_every_shipped_options_file_loads_and_passes_its_tools_checks(path):
    opt = read_options(path)
    with open(path) as f:
        assert opt == yaml.safe_load(f)
    (check_training_options if path.name.startswith('train_') else check_test_options)(opt, path)


def training_file(tmp_path, change, name='refused_options'):
    """options/train_memdeblur_synthetic.yml with ``change`` ({'section:key': value}, None deletes) applied."""
    opt = load_options(Path(REPO_ROOT, 'options', 'train_memdeblur_synthetic.yml'))
    opt['name'] = name
    for option, value in change.items():
        *sections, key = option.split(':')
        section = opt
        for part in sections:
            section = section[part]
        if value is None:
            del section[key]
        else:
            section[key] = value
    return write_options(tmp_path, opt, 'refused.yml')


# (option, value, words of the refusal): values BasicSR's loop divides by, counts with or cannot build
OUT_OF_RANGE = [
    ('logger:print_freq', 0, ["'print_freq'", 'greater than 0, got 0']),
    ('logger:save_checkpoint_freq', 0, ["'save_checkpoint_freq'", 'greater than 0']),
    ('val:val_freq', 0, ["'val_freq'", 'greater than 0']),
    ('train:total_iter', 0, ["'total_iter'", 'at least 1, got 0']),
    ('train:max_norm', -1.0, ["'max_norm'", 'at least 0']),
    ('train:ema_decay', 1.5, ["'ema_decay'", 'below 1']),
    ('val:window_batch', 0, ["'window_batch'", 'at least 1']),
    ('manual_seed', -1, ["'manual_seed'", 'from 0 to']),
    ('scale', 0, ["'scale'", 'at least 1']),
]


@pytest.mark.parametrize('option, value, words', OUT_OF_RANGE, ids=[o for o, _, _ in OUT_OF_RANGE])
def test_values_basicsr_cannot_run_are_refused_when_the_file_is_read(tmp_path, option, value, words):
    path = training_file(tmp_path, {option: value})
    with pytest.raises(OptionError) as refused:
        read_options(path)
    assert str(refused.value).startswith(str(path)) and all(w in str(refused.value) for w in words), refused.value
    result = run_tool('check_data.py', '-opt', path, '--no-progress')  # the same check as training's
    assert_one_line_error(result, str(path), *words)


# (change, words): what BasicSR's training reads without a default, or cannot build
TRAINING_NEEDS = [
    ({'logger:print_freq': None}, ['logger:print_freq']),
    ({'logger:use_tb_logger': None}, ['logger:use_tb_logger']),
    ({'val:val_freq': None}, ['val:val_freq']),
    ({'train:pixel_opt': None}, ['train:pixel_opt']),
    ({'train:optim_g:type': 'SGD'}, ['train:optim_g', "'type' must be one of 'Adam', got 'SGD'"]),
    ({'train:scheduler:type': 'StepLR'}, ['train:scheduler', "got 'StepLR'"]),
    ({'train:optim_g:lr': 0}, ['train:optim_g', "'lr'", 'greater than 0']),
    ({'datasets:train:batch_size_per_gpu': 0}, ['datasets:train', "'batch_size_per_gpu'", 'at least 1']),
    ({'datasets:train:num_frame': 0}, ['datasets:train', "'num_frame'", 'at least 1']),
    ({'datasets:train:dataset_enlarge_ratio': 0}, ["'dataset_enlarge_ratio'", 'greater than 0']),
    ({'datasets:test': {'name': 't', 'type': 'VideoDeblurTestDataset', 'dataroot': 'x'}}, ['datasets:test']),
]


@pytest.mark.parametrize('change, words', TRAINING_NEEDS, ids=[next(iter(c)) for c, _ in TRAINING_NEEDS])
def test_training_refuses_what_it_cannot_run_before_making_the_experiment(tmp_path, change, words):
    name = f'refused_{tmp_path.name}'
    path = training_file(tmp_path, change, name)
    result = run_tool('train.py', '-opt', path)
    assert_one_line_error(result, str(path), *words)
    assert not Path(REPO_ROOT, 'experiments', name).exists()


@pytest.mark.parametrize('option, value', [('logger:print_freq', 0), ('train:total_iter', 0)])
def test_train_py_refuses_loop_values_and_force_yml_ones(tmp_path, option, value):
    name = f'refused_{tmp_path.name}'
    key = repr(option.split(':')[1])
    assert_one_line_error(run_tool('train.py', '-opt', training_file(tmp_path, {option: value}, name)), key)
    assert_one_line_error(run_tool('train.py', '-opt', training_file(tmp_path, {}, name), '--force_yml',
                                   f'{option}={value}'), key)
    assert not Path(REPO_ROOT, 'experiments', name).exists()


@pytest.mark.parametrize('metrics', [None, {}])
def test_test_py_refuses_a_test_that_would_score_nothing(tmp_path, metrics):
    opt = load_options(Path(REPO_ROOT, 'options', 'test_memdeblur_synthetic.yml'))
    opt['name'] = f'refused_{tmp_path.name}'
    opt['val']['metrics'] = metrics
    path = write_options(tmp_path, opt, 'no_metrics.yml')
    assert_one_line_error(run_tool('test.py', '-opt', path), str(path), f'val:metrics is {metrics!r}',
                          'tools/deblur_video.py')
    del opt['val']
    path = write_options(tmp_path, opt, 'no_val.yml')
    assert_one_line_error(run_tool('test.py', '-opt', path), str(path), 'needs a val section')
    assert not Path(REPO_ROOT, 'results', opt['name']).exists()


def test_two_test_sets_of_one_name_are_refused(tmp_path):
    """Their result tables, pictures and best scores go by name: the second would overwrite the first's."""
    opt = yaml.safe_load((Path(REPO_ROOT) / 'options' / 'test_memdeblur_synthetic.yml').read_text())
    (phase, dataset), = [(k, v) for k, v in opt['datasets'].items() if k != 'train']
    opt['datasets'][phase + '_2'] = {**dataset, 'dataroot': str(tmp_path / 'other')}
    with pytest.raises(OptionError, match=f"'{dataset['name']}' is also the name of datasets:{phase}"):
        read_options(write_options(tmp_path, opt))
