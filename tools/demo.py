"""The whole workflow on a fresh machine, in minutes on a CPU: data, training, testing, results.

    python tools/demo.py

1. writes the synthetic GOPRO-like set to datasets/synthetic_gopro (kept if already there);
2. trains options/train_memdeblur_synthetic.yml with tools/train.py (an earlier run of the same
   name is archived by BasicSR, not overwritten);
3. tests the trained model with tools/test.py on the held-out synthetic sequences;
4. prints the restored vs blurry PSNR and where the tables, frames and comparisons are.
"""
import argparse
import csv
import os.path as osp
import subprocess
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA = osp.join('datasets', 'synthetic_gopro')
TRAIN_OPT = osp.join('options', 'train_memdeblur_synthetic.yml')
TEST_OPT = osp.join('options', 'test_memdeblur_synthetic.yml')


def run(*args):
    """Run a repository tool with this interpreter from the repository root; stop the demo if it fails."""
    print('\n$ ' + ' '.join(['python', *args]), flush=True)
    result = subprocess.run([sys.executable, *args], cwd=REPO_ROOT)
    if result.returncode != 0:
        sys.exit(f'demo: {" ".join(args[:1])} failed with exit code {result.returncode}')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, help='training iterations (default: the options file, 300)')
    return parser.parse_args()


def main():
    args = parse_args()
    if not osp.isdir(osp.join(REPO_ROOT, DATA)):
        run(osp.join('tools', 'make_synthetic_gopro.py'), DATA)
    train_args = [osp.join('tools', 'train.py'), '-opt', TRAIN_OPT]
    if args.iters:
        train_args += ['--force_yml', f'train:total_iter={args.iters}']
    run(*train_args)
    run(osp.join('tools', 'test.py'), '-opt', TEST_OPT)
    results = osp.join(REPO_ROOT, 'results', 'memdeblur_synthetic')
    with open(osp.join(results, 'SyntheticGOPRO_test_metrics.csv')) as f:
        average = list(csv.DictReader(f))[-1]
    print(f'\nHeld-out synthetic sequences, {average["frames"]} frames:')
    for metric in ('psnr', 'psnr_released'):
        restored, blurry = float(average[metric]), float(average[f'{metric} (blurry input)'])
        print(f'  {metric:14s} restored {restored:.2f} dB, blurry input {blurry:.2f} dB ({restored - blurry:+.2f} dB)')
    print(f'Tables: {osp.join(results, "SyntheticGOPRO_test_metrics.md")} (and .csv)')
    print(f'Frames and blurry | restored | sharp comparisons: {osp.join(results, "visualization", "SyntheticGOPRO_test")}')


if __name__ == '__main__':
    main()
