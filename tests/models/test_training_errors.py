"""What a user can get wrong on the command line of training and the tools is one line naming the flag, never a
traceback: a diverging loss, a CXX that is not installed, counts and sizes of zero or less."""
import argparse
import re

import pytest
import torch
from torch._inductor import config as inductor_config

from memdeblur.cli.command_line import frame_size, int_at_least
from memdeblur.models.training_step import check_compile_support
from memdeblur.utils.option_check import OptionError
from tests.pipeline_helpers import run_pipeline, run_tool, tiny_training_options, write_options


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr and 'error: ' in result.stderr, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


@pytest.mark.slow
def test_a_diverging_loss_stops_training_in_one_line(synthetic_gopro, tmp_path):
    opt = tiny_training_options(synthetic_gopro, 'diverging', total_iter=4)
    opt['network_g'].update(mid_channels=8, num_blocks_forward=1, num_blocks_backward=1)
    opt['train']['optim_g']['lr'] = 1e38  # a typo for 1e-3: the first step sends every weight to about 1e38
    result = run_pipeline('train', tmp_path, write_options(tmp_path, opt))
    assert_one_line_error(result, 'Iteration 2: the training loss is', 'lower the learning rate')
    assert result.stderr.splitlines()[-1].startswith('error: Iteration 2: the training loss is nan')


@pytest.fixture
def missing_cxx(monkeypatch, tmp_path):
    """CXX naming a compiler that is not installed, as torch reads it when it starts."""
    missing = str(tmp_path / 'bin' / 'g++-42')
    monkeypatch.setenv('CXX', missing)
    with inductor_config.patch({'cpp.cxx': (None, missing)}):
        yield missing


def test_cxx_naming_a_missing_compiler_is_refused_naming_it(missing_cxx):
    with pytest.raises(OptionError, match=rf"needs a C\+\+ compiler .*CXX='{re.escape(missing_cxx)}' names no "):
        check_compile_support(torch.device('cpu'))


def test_train_py_refuses_compile_with_a_missing_cxx_in_one_line(missing_cxx, tmp_path):
    from tests.pipeline_helpers import load_options
    opt = {**load_options('train_memdeblur_synthetic.yml'), 'num_gpu': 0, 'name': f'refused_{tmp_path.name}'}
    result = run_tool('train.py', '-opt', write_options(tmp_path, opt), '--force_yml', 'train:compile=true')
    assert_one_line_error(result, f"CXX='{missing_cxx}'", 'compile: false')


@pytest.mark.parametrize('text', ['0x0', '0x1280', '720x0', '-720x1280', '720x-1'])
def test_frame_sizes_of_zero_or_less_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f'at least 1x1 .*got {text!r}'):
        frame_size(text)
    assert frame_size('1x2') == (1, 2)


def test_counts_below_their_minimum_are_refused():
    with pytest.raises(argparse.ArgumentTypeError, match='must be at least 1, got 0'):
        int_at_least(1)('0')
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got 'two'"):
        int_at_least(1)('two')
    assert int_at_least(0)('0') == 0


@pytest.mark.parametrize('args, flag', [(['--size', '0x0'], '--size'), (['--size=-8x8'], '--size'),
                                        (['--frames', '-1'], '--frames'), (['--frames', '0'], '--frames'),
                                        (['--run', 'cpu', '--run-frames', '0'], '--run-frames')])
def test_complexity_refuses_sizes_and_counts_of_zero_or_less(args, flag):
    result = run_tool('complexity.py', '-opt', 'options/test_memdeblur_synthetic.yml', *args)
    assert result.returncode == 2 and f'argument {flag}: ' in result.stderr and 'Traceback' not in result.stderr, \
        result.stdout + result.stderr
    assert 'GMACs' not in result.stdout


@pytest.mark.parametrize('args, words', [(['--frames', '0'], 'argument --frames: must be at least 1, got 0'),
                                         (['--height', '-4'], 'argument --height: must be at least 8'),
                                         (['--width', '4'], 'argument --width: must be at least 8, got 4'),
                                         (['--subframes', '0'], 'argument --subframes: must be at least 1'),
                                         (['--train-seqs', '-1'], 'argument --train-seqs: must be at least 0'),
                                         (['--train-seqs', '0', '--test-seqs', '0'], 'nothing to write')])
def test_make_synthetic_gopro_refuses_counts_that_write_nothing(tmp_path, args, words):
    result = run_tool('make_synthetic_gopro.py', tmp_path / 'out', *args)
    assert result.returncode == 2 and words in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / 'out').exists()
