"""The whole workflow on a fresh machine in minutes on a CPU: data, training, testing, pictures.

examples:
  python tools/demo.py                 # make the data, train the demo model, test it
  python tools/demo.py --pretrained    # test the shipped model instead of training (a minute or two)
  python tools/demo.py --iters 2000    # train longer than the options file says
  python tools/demo.py --precision float32   # the options file's exact float32 recipe on any CPU

Steps:
1. writes the synthetic GOPRO-like set (tools/make_synthetic_gopro.py, default settings) to
   datasets/synthetic_gopro, or reuses it if the same generator settings made it;
2. trains options/train_memdeblur_synthetic.yml with tools/train.py (an earlier experiment of the
   same name is archived by BasicSR, not overwritten); on a CPU with BF16 instructions (AVX-512 BF16,
   AMX) in bfloat16 with channels-last (train.precision, train.channels_last), which trains faster
   there to the same quality (options/README.md, "Training precision and speed"); skipped with
   --pretrained, which tests pretrained/memdeblur_synthetic.pth
   (options/test_memdeblur_synthetic_pretrained.yml);
3. tests the model with tools/test.py on the held-out synthetic sequences;
4. prints PSNR and edge sharpness (variance of the Laplacian, higher is sharper) of the blurry
   input, the restored frames and the sharp ground truth, and where the tables and the labelled
   blurry | restored | sharp pictures (with a zoomed crop) are.
"""
import glob
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import torch

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers everything)
from memdeblur.utils.errors import DataError
from memdeblur.data.synthetic import settings_mismatch
from memdeblur.cli.command_line import run_tool, tool_parser
from memdeblur.run_options import read_options
from memdeblur.evaluation.comparison_image import edge_sharpness
from memdeblur.evaluation.run_report import read_run_report
from memdeblur.utils.precision import cpu_has_native_bfloat16

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA = osp.join('datasets', 'synthetic_gopro')
TRAIN_OPT = osp.join('options', 'train_memdeblur_synthetic.yml')
TEST_OPT = osp.join('options', 'test_memdeblur_synthetic.yml')
PRETRAINED_TEST_OPT = osp.join('options', 'test_memdeblur_synthetic_pretrained.yml')


def run(*args):
    """Run a repository tool with this interpreter from the repository root; stop the demo if it fails."""
    print('\n$ ' + ' '.join(['python', *args]), flush=True)
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT)
    if result.returncode != 0:
        raise DataError(f'demo: {" ".join(args[:1])} failed with exit code {result.returncode} (its output is above).')


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    default_iters = read_options(osp.join(REPO_ROOT, TRAIN_OPT))['train']['total_iter']
    parser = tool_parser(__doc__)
    parser.add_argument('--iters', type=int,
                        help=f'training iterations (default: {default_iters}, from {TRAIN_OPT})')
    parser.add_argument('--pretrained', action='store_true',
                        help='skip training: test the shipped model pretrained/memdeblur_synthetic.pth')
    parser.add_argument('--precision', choices=('auto', 'float32', 'bfloat16'), default='auto',
                        help='training precision; auto: bfloat16 with channels-last on a CPU with BF16 instructions '
                             '(no GPU), float32 elsewhere (default: auto)')
    return parser


def training_precision(choice):
    """The demo's training overrides for ``--precision`` and a line saying what was chosen and why."""
    if choice == 'auto':
        native = not torch.cuda.is_available() and cpu_has_native_bfloat16()
        choice = 'bfloat16' if native else 'float32'
        why = ('this CPU has BF16 instructions' if native else 'bfloat16 pays only on a CPU with BF16 instructions')
    else:
        why = '--precision'
    overrides = [f'train:precision={choice}'] + (['train:channels_last=true'] if choice == 'bfloat16' else [])
    return overrides, f'Training in {choice}{" with channels-last" if choice == "bfloat16" else ""} ({why}).'


def prepare_data():
    """Make the synthetic set, or check that an existing one came from the current generator settings."""
    root = osp.join(REPO_ROOT, DATA)
    if not osp.isdir(root):
        run(osp.join('tools', 'make_synthetic_gopro.py'), DATA)
        return
    problem = settings_mismatch(root)
    if problem:
        raise DataError(f'demo: {root} was not made with the current default settings ({problem}); the numbers '
                        'would not be comparable. Move or delete it and run the demo again.')


def mean_sharpness(paths):
    return float(np.mean([edge_sharpness(cv2.imread(path)) for path in paths]))


def report(test_opt):
    """Print PSNR and edge sharpness of blurry, restored and sharp frames, and where the results are.

    Args:
        test_opt (dict): The test options file just run (its name and test dataset locate the results).
    """
    results = osp.join(REPO_ROOT, 'results', test_opt['name'])
    dataset_name = test_opt['datasets']['test']['name']
    result = read_run_report(osp.join(results, dataset_name))
    restored = sorted(glob.glob(osp.join(results, 'visualization', dataset_name, '*', '*.png')))
    restored = [p for p in restored if '_comparison_' not in osp.basename(p)]
    sequences = osp.join(REPO_ROOT, DATA, 'test')
    blurry = [osp.join(sequences, osp.basename(osp.dirname(p)), 'blur_gamma', osp.basename(p)) for p in restored]
    sharp = [p.replace(f'{osp.sep}blur_gamma{osp.sep}', f'{osp.sep}sharp{osp.sep}') for p in blurry]
    print(f'\nHeld-out synthetic sequences, {result["frames_scored"]} frames (frame averages):')
    for metric in ('psnr', 'psnr_released'):
        out, blur = result['average'][metric], result['blurry_input_average'][metric]
        print(f'  {metric:14s} restored {out:.2f} dB, blurry input {blur:.2f} dB ({out - blur:+.2f} dB)')
    print(f'  edge sharpness (variance of the Laplacian): blurry {mean_sharpness(blurry):.0f}, '
          f'restored {mean_sharpness(restored):.0f}, sharp {mean_sharpness(sharp):.0f}')
    print(f'Tables: {osp.join(results, dataset_name + "_metrics.md")} (and .csv)')
    print(f'Labelled blurry | restored | sharp pictures with zoomed crops: '
          f'{osp.join(results, "visualization", dataset_name, "*_comparison_*.png")}')


def main(argv=None):
    args = build_parser().parse_args(argv)
    prepare_data()
    if args.pretrained:
        test_opt = PRETRAINED_TEST_OPT
    else:
        test_opt = TEST_OPT
        overrides, message = training_precision(args.precision)
        print(message, flush=True)
        if args.iters:
            overrides.append(f'train:total_iter={args.iters}')
        run(osp.join('tools', 'train.py'), '-opt', TRAIN_OPT, '--force_yml', *overrides)
    run(osp.join('tools', 'test.py'), '-opt', test_opt)
    report(read_options(osp.join(REPO_ROOT, test_opt)))
    return 0


if __name__ == '__main__':
    run_tool(main)
