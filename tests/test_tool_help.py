"""Every tool explains itself: --help describes it with examples and gives each option its default."""
import argparse
import importlib

import pytest

from memdeblur.utils.cli import basicsr_parser
from tests.pipeline_helpers import run_tool

TOOLS = ('check_data', 'compare', 'complexity', 'convert_checkpoint', 'deblur_video', 'demo', 'make_synthetic_gopro',
         'prepare_gopro', 'verify_official_checkpoint')


def documented(parser):
    """(option, problem) for every option whose help is missing or hides its default."""
    help_text = parser.format_help()
    problems = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        if not action.help:
            problems.append((name, 'no help'))
        elif action.option_strings and action.default not in (None, False) and 'default' not in \
                parser._get_formatter()._get_help_string(action):
            problems.append((name, 'default not shown'))
    return help_text, problems


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_has_a_description_examples_and_documented_options(tool):
    module = importlib.import_module(f'tools.{tool}')
    help_text, problems = documented(module.build_parser())
    assert problems == []
    assert f'python tools/{tool}.py' in help_text  # an example command
    assert len(module.__doc__.strip().splitlines()[0]) > 30  # a one-line summary of what it does


@pytest.mark.parametrize('training', (True, False))
def test_train_and_test_offer_only_the_flags_that_apply(training):
    parser = basicsr_parser('Summary.\n\nexamples:\n  python tools/x.py -opt a.yml', training)
    help_text, problems = documented(parser)
    assert problems == []
    assert ('--auto_resume' in help_text) is training and '--debug' in help_text
    assert ("BasicSR's debug mode" in help_text) is training  # testing: --debug only keeps tracebacks
    if not training:
        with pytest.raises(SystemExit):
            parser.parse_args(['-opt', 'a.yml', '--auto_resume'])


def test_defaults_appear_in_the_help_text():
    parser = importlib.import_module('tools.deblur_video').build_parser()
    text = ' '.join(parser.format_help().split())
    assert '--tile-overlap TILE_OVERLAP pixels shared by neighbouring tiles (default: 32)' in text
    demo = ' '.join(importlib.import_module('tools.demo').build_parser().format_help().split())
    assert 'default: 800, from options/train_memdeblur_synthetic.yml' in demo  # read from the options file


@pytest.mark.parametrize('tool', ('train', 'test'))
def test_train_and_test_help_and_missing_options_file(tool, tmp_path):
    shown = run_tool(f'{tool}.py', '--help', cwd=tmp_path)
    assert shown.returncode == 0 and f'python tools/{tool}.py -opt options/' in shown.stdout
    missing = run_tool(f'{tool}.py', '-opt', 'nowhere.yml', cwd=tmp_path)
    assert missing.returncode != 0 and 'nowhere.yml does not exist' in missing.stderr
