"""Run BasicSR's own test suite with and without ``import memdeblur`` and compare the outcomes, test by test.

    git clone https://github.com/XPixelGroup/BasicSR ../BasicSR
    python tools/check_basicsr_suite.py ../BasicSR

``import memdeblur`` must not change what BasicSR does for programs that use BasicSR alone: it closes only
what importing BasicSR and building its networks need, and changes BasicSR's pipeline only where our entry
points run it (``memdeblur/basicsr_compat.py``). This runs the suite in the checkout's ``tests/`` folder twice,
against the checkout's ``basicsr`` package (its ``version.py`` written as its ``setup.py`` would), each time in a copy of the checkout: once as it is, once with
``import memdeblur`` first. On a machine without a GPU, ``.cuda()`` of tensors and modules returns them
unchanged in both runs (the suite assumes a GPU). Prints each run's counts and every test whose outcome
differs; exits 1 when any does. ``--json`` writes the outcomes for scripts.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.utils.errors import DataError
from memdeblur.cli.command_line import input_path, run_tool, tool_parser
from memdeblur.utils.outputs import check_outputs, write_text_atomic

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFTEST = '''"""Written by memdeblur's tools/check_basicsr_suite.py: a CPU in place of the GPU the suite assumes."""
import torch

if not torch.cuda.is_available():
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
if {with_memdeblur}:
    import memdeblur  # noqa: F401
'''


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('basicsr', type=input_path('the BasicSR checkout'),
                        help='a checkout of github.com/XPixelGroup/BasicSR (its basicsr/ and tests/)')
    parser.add_argument('--json', metavar='FILE.json', help='also write every test\'s outcome in both runs')
    return parser


def outcomes(junit_xml):
    """{test id: passed | failed | error | skipped} from pytest's JUnit XML report."""
    results = {}
    for case in ET.parse(junit_xml).getroot().iter('testcase'):
        test = f'{case.get("classname")}::{case.get("name")}'
        kinds = [child.tag for child in case if child.tag in ('failure', 'error', 'skipped')]
        results[test] = {'failure': 'failed', 'error': 'error', 'skipped': 'skipped'}.get(
            kinds[0] if kinds else None, 'passed')
    return results


def run_suite(checkout, with_memdeblur, work):
    """The suite's outcomes in a copy of ``checkout`` (the conftest writes into its tests folder)."""
    copy = osp.join(work, 'with_memdeblur' if with_memdeblur else 'plain')
    shutil.copytree(osp.join(checkout, 'basicsr'), osp.join(copy, 'basicsr'))
    shutil.copytree(osp.join(checkout, 'tests'), osp.join(copy, 'tests'))
    version = osp.join(copy, 'basicsr', 'version.py')
    if not osp.exists(version):  # written by BasicSR's setup.py when it is installed
        with open(osp.join(checkout, 'VERSION')) as f:
            number = f.read().strip()
        with open(version, 'w') as f:
            f.write(f"__version__ = '{number}'\n__gitsha__ = 'unknown'\n")
    with open(osp.join(copy, 'tests', 'conftest.py'), 'w') as f:
        f.write(CONFTEST.format(with_memdeblur=with_memdeblur))
    report = osp.join(copy, 'report.xml')
    pythonpath = os.pathsep.join([copy, REPO_ROOT] if with_memdeblur else [copy])
    label = 'with import memdeblur' if with_memdeblur else 'BasicSR alone'
    print(f'== {label}', flush=True)
    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--junitxml={report}', 'tests'],
                   cwd=copy, env={**os.environ, 'PYTHONPATH': pythonpath})
    if not osp.isfile(report):
        raise DataError(f'pytest wrote no report for the run {label}; see its output above.')
    return outcomes(report)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not (osp.isdir(osp.join(args.basicsr, 'basicsr')) and osp.isdir(osp.join(args.basicsr, 'tests'))):
        raise DataError(f'{args.basicsr} is not a BasicSR checkout (no basicsr/ and tests/ folders in it).')
    if args.json:
        check_outputs(files=[args.json], overwrite=False, inputs=[args.basicsr])
    with tempfile.TemporaryDirectory(prefix='memdeblur_basicsr_suite_') as work:
        plain = run_suite(osp.abspath(args.basicsr), False, work)
        ours = run_suite(osp.abspath(args.basicsr), True, work)
    for label, result in (('BasicSR alone', plain), ('with import memdeblur', ours)):
        counts = Counter(result.values())
        print(f'{label}: ' + ', '.join(f'{counts[k]} {k}' for k in ('passed', 'failed', 'error', 'skipped')))
    differing = sorted(t for t in set(plain) | set(ours) if plain.get(t) != ours.get(t))
    for test in differing:
        print(f'  differs: {test}: {plain.get(test, "not run")} alone, {ours.get(test, "not run")} with memdeblur')
    if args.json:
        write_text_atomic(args.json, json.dumps({'basicsr_alone': plain, 'with_memdeblur': ours,
                                                 'differing': differing}, indent=2) + '\n')
    print('The same outcome for every test.' if not differing else f'{len(differing)} test(s) differ.')
    return 1 if differing else 0


if __name__ == '__main__':
    run_tool(main)
