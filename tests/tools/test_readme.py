"""The README and the commands' help work for a newcomer with a fresh clone and nothing downloaded: the README's
blocks run as written on the shipped model and the sample clip, and every help example names files a fresh clone
has, a download the README's "Models" lists, or the user's own footage and data."""
import os
import re
import shlex
import subprocess
import sys

import pytest

from memdeblur.cli.command_line import basicsr_parser
from tests.conftest import REPO_ROOT
from memdeblur.utils.safe_load import load_options
from tests.pipeline_helpers import tool_module

# README sections whose blocks a newcomer runs first; their lines that need a download or the user's footage are
# the "other line" of each block and are left out (below)
RUN_SECTIONS = ('Two commands', 'Deblur a video', 'Export to ONNX, run in ONNX Runtime or OpenVINO', 'Use in code')
DOWNLOADED = ('memdeblur_gopro', 'phone.mp4', 'memdeblur.onnx', 'estrnn.pth.tar', 'GOPRO', '/data/', '/models/',
              '../BasicSR', 'clips/', 'frames/')
CHECKOUT = ('options', 'pretrained', 'samples', 'tools')


def readme_blocks():
    """(section, language, text) of every fenced block of README.md."""
    with open(os.path.join(REPO_ROOT, 'README.md')) as f:
        text = f.read()
    blocks, section = [], None
    for part in re.split(r'^(## .*|```\w*\n(?:.*\n)*?```)$', text, flags=re.M):
        if part.startswith('## '):
            section = part[3:].strip()
        elif part.startswith('```'):
            language, _, body = part[3:-3].partition('\n')
            blocks.append((section, language, body))
    return blocks


def needs_download(line):
    return any(name in line for name in DOWNLOADED)


def fresh_checkout(tmp_path):
    """A folder laid out as a fresh clone (its files linked), where what the README writes lands."""
    work = tmp_path / 'checkout'
    work.mkdir()
    for name in CHECKOUT:
        os.symlink(os.path.join(REPO_ROOT, name), work / name)
    return work


def run(command, cwd):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, 'PYTHONPATH': REPO_ROOT})


@pytest.mark.slow
def test_the_readme_runs_as_written_on_the_shipped_model(tmp_path):
    """Every command and code block of the sections a newcomer starts with runs on a fresh clone, in order; what
    ``demo.py --pretrained`` prints is what the README shows."""
    work, ran = fresh_checkout(tmp_path), {section: 0 for section in RUN_SECTIONS}
    for section, language, body in readme_blocks():
        if section not in RUN_SECTIONS:
            continue
        if language == 'python':
            result = run([sys.executable, '-c', body], work)
            assert result.returncode == 0, (section, body, result.stderr[-2000:])
            ran[section] += 1
        elif language == 'bash':
            for line in body.replace('\\\n', ' ').splitlines():
                if not line.startswith('python ') or needs_download(line):
                    continue  # the set-up (pip, venv) and the lines for the authors' model and your footage
                result = run([sys.executable, *shlex.split(line)[1:]], work)
                assert result.returncode == 0, (line, result.stderr[-2000:])
                ran[section] += 1
                if 'demo.py --pretrained' in line:
                    printed = result.stdout.replace(f'{work}/', '')
                    shown = next(text for name, language, text in readme_blocks()
                                 if name == section and language == '' and 'Held-out' in text)
                    assert shown in printed, (shown, printed[-2000:])
    assert all(ran.values()), ran  # each section has a line for the shipped model
    assert (work / 'deblurred.mp4').is_file() and len(list((work / 'deblurred_frames').glob('*.png'))) == 24


def help_examples():
    """(tool, command line) of every example in every tool's help."""
    tools = sorted(p[:-3] for p in os.listdir(os.path.join(REPO_ROOT, 'tools'))
                   if p.endswith('.py') and p != '__init__.py')
    examples = []
    for tool in tools:
        doc = tool_module(tool).__doc__.replace('\\\n', ' ')
        for line in doc.splitlines():
            line, _, comment = (part.strip() for part in line.partition('#'))
            if re.match(rf'(python|torchrun .*) tools/{tool}\.py\b', line):
                examples.append((tool, line, comment))
    return examples


def test_every_help_example_names_what_a_fresh_clone_has():
    """Each example parses with its tool's parser, and each file it names is in the checkout (options files, the
    shipped model, the sample clip), a download the README lists, made by the demo or another example, or the
    user's own (named as such)."""
    examples = help_examples()
    assert len(examples) > 30
    for tool, line, comment in examples:
        args = shlex.split(line)
        args = args[args.index(next(a for a in args if a.endswith(f'tools/{tool}.py'))) + 1:]
        parser = basicsr_parser('', tool == 'train') if tool in ('train', 'test') else tool_module(tool).build_parser()
        parsed = vars(parser.parse_args(args))
        for value in parsed.values():
            for name in value if isinstance(value, list) else [value]:
                if not isinstance(name, str) or not re.search(r'\.(yml|pth|tar|mp4)$|/$', name) or needs_download(name):
                    continue
                if name.startswith(('results/', 'datasets/', 'deblurred', 'out/', 'experiments/')) or name in (
                        parsed.get('output'), parsed.get('out'), parsed.get('dst')):
                    continue  # what the example writes
                assert os.path.exists(os.path.join(REPO_ROOT, name)), (tool, line, name)
                if name.endswith('.yml') and 'shipped' in comment:  # said to be the shipped model: it loads it
                    weights = load_options(os.path.join(REPO_ROOT, name))['path']['pretrain_network_g']
                    assert os.path.isfile(os.path.join(REPO_ROOT, weights)), (tool, line, weights)


@pytest.mark.slow
def test_the_help_examples_for_the_shipped_model_run_on_a_fresh_clone(tmp_path):
    """The examples that need nothing but a fresh clone run as written: the sample clip deblurred, the shipped model
    exported, the demo's data made and the shipped model tested on it."""
    work = fresh_checkout(tmp_path)
    wanted = [(tool, line) for tool, line, _ in help_examples()
              if 'synthetic_pretrained' in line or 'pretrained/' in line or
              (tool == 'make_synthetic_gopro' and line.endswith('datasets/synthetic_gopro'))]
    wanted.sort(key=lambda example: example[0] != 'make_synthetic_gopro')  # the data first
    assert {tool for tool, _ in wanted} >= {'deblur_video', 'export_onnx', 'make_synthetic_gopro', 'test'}
    for tool, line in wanted:
        if 'compare.py' in line or ('test.py' in line and 'val:fast' in line):
            continue  # compare needs the demo's model; the fast variant is the same test again
        result = run([sys.executable, *shlex.split(line)[1:]], work)
        assert result.returncode == 0, (line, result.stderr[-2000:])
