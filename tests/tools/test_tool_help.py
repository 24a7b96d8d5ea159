"""Every tool explains itself: --help describes it with examples and gives each option its default."""
import re

import pytest

from memdeblur.cli.command_line import basicsr_parser
from tests.pipeline_helpers import run_tool, tool_module

TOOLS = ('check_data', 'compare', 'complexity', 'convert_checkpoint', 'deblur_video', 'demo', 'export_onnx',
         'make_synthetic_gopro', 'prepare_gopro', 'verify_official_checkpoint')


def option_entries(help_text):
    """{destination: (option, its help in one line)} of every option ``--help`` lists; the destination is named as
    argparse documents it (the first long option, else the first short one, without dashes)."""
    lines = help_text.splitlines()
    entries, current = {}, None
    for line in lines[lines.index('options:') + 1:]:
        if re.match(r'  -', line):
            head, _, text = line.strip().partition('  ')
            flags = [flag.split(' ')[0] for flag in head.split(', ')]
            option = next((f for f in flags if f.startswith('--')), flags[0])
            current = entries[option.lstrip('-').replace('-', '_')] = [option, text.strip()]
        elif line.startswith('   ') and current is not None:
            current[1] = (current[1] + ' ' + line.strip()).strip()
        else:
            current = None
    return entries


def documented(parser):
    """(help text, [(option, problem)]) for every option whose help is missing or hides its default."""
    help_text = parser.format_help()
    problems = []
    for dest, (option, text) in option_entries(help_text).items():
        if option == '--help':
            continue
        if not text:
            problems.append((option, 'no help'))
        elif parser.get_default(dest) not in (None, False) and 'default' not in text:
            problems.append((option, 'default not shown'))
    return help_text, problems


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_has_a_description_examples_and_documented_options(tool):
    module = tool_module(tool)
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
    parser = tool_module('deblur_video').build_parser()
    text = ' '.join(parser.format_help().split())
    assert '--tile-overlap TILE_OVERLAP pixels shared by neighbouring tiles (default: 32)' in text
    demo = ' '.join(tool_module('demo').build_parser().format_help().split())
    assert 'default: 800, from options/train_memdeblur_synthetic.yml' in demo  # read from the options file


@pytest.mark.parametrize('tool', ('train', 'test'))
def test_train_and_test_help_and_missing_options_file(tool, tmp_path):
    shown = run_tool(f'{tool}.py', '--help', cwd=tmp_path)
    assert shown.returncode == 0 and f'python tools/{tool}.py -opt options/' in shown.stdout
    missing = run_tool(f'{tool}.py', '-opt', 'nowhere.yml', cwd=tmp_path)
    assert missing.returncode != 0 and 'nowhere.yml does not exist' in missing.stderr

