"""Check that MemDeblurNet computes what the authors' code computes, on their test vectors.

    python tools/verify_official_checkpoint.py

Converts the shared original-format checkpoint to BasicSR format, loads the converted file,
runs the network in float64 on the fixture's input in eval and in train mode (no_grad),
prints the largest difference to the authors' outputs at every scale against the tolerance,
and times float32 inference per frame. Exits non-zero when any scale is out of tolerance.
"""
import os
import os.path as osp
import tempfile
import time

import torch

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers the archs)
from basicsr.archs import build_network

from memdeblur.networks.checkpoint import convert_checkpoint, load_pretrained, read_checkpoint
from memdeblur.cli.command_line import input_path, run_tool, tool_parser

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES_ROOT = os.environ.get('MEMDEBLUR_FIXTURES_ROOT', osp.join(REPO_ROOT, '..', 'shared', 'fixtures'))
DEFAULT_FIXTURE_DIR = osp.normpath(osp.join(FIXTURES_ROOT, 'official_memdeblur'))
TOLERANCES = {'eval': 1e-9, 'train': 1e-6}  # train mode's BatchNorm amplifies rounding to ~1e-7


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('--fixture-dir', default=DEFAULT_FIXTURE_DIR, type=input_path('--fixture-dir'),
                        help='folder with memdeblur_official_format.pth.tar and io.pt')
    parser.add_argument('--timing-runs', type=int, default=3, help='timed float32 forward passes')
    return parser


def max_differences(net, inputs, references):
    with torch.no_grad():
        outputs = net(inputs, return_scales=True)
    return [(out - ref).abs().max().item() for out, ref in zip(outputs, references)]


def seconds_per_frame(net, inputs, runs):
    with torch.no_grad():
        net(inputs)  # warm-up
        start = time.perf_counter()
        for _ in range(runs):
            net(inputs)
    return (time.perf_counter() - start) / (runs * inputs.shape[0] * inputs.shape[1])


def main(argv=None):
    args = build_parser().parse_args(argv)
    checkpoint = osp.join(args.fixture_dir, 'memdeblur_official_format.pth.tar')
    vectors = read_checkpoint(osp.join(args.fixture_dir, 'io.pt'), 'Test vectors')
    network_opt = {'type': 'MemDeblurNet', **vectors['config']}
    net = build_network(network_opt)
    with tempfile.TemporaryDirectory() as tmp:
        converted = osp.join(tmp, 'memdeblur_basicsr.pth')
        convert_checkpoint(checkpoint, converted, net)
        load_pretrained(net, converted)
    print(f'Converted {checkpoint} to BasicSR format and loaded it (strict).')
    inputs = vectors['input']
    print(f'Input {tuple(inputs.shape)}, float64; largest |ours - authors| per scale (coarse to fine):')
    all_ok = True
    for mode, tolerance in TOLERANCES.items():
        net.double().train(mode == 'train')
        diffs = max_differences(net, inputs, vectors[f'outputs_{mode}'])
        ok = all(d <= tolerance for d in diffs)
        all_ok &= ok
        print(f'  {mode:5s}: ' + '  '.join(f'{d:.2e}' for d in diffs) + f'  (tolerance {tolerance:.0e}) '
              f'{"OK" if ok else "FAILED"}')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    net = net.float().eval().to(device)
    per_frame = seconds_per_frame(net, inputs.float().to(device), args.timing_runs)
    h, w = inputs.shape[-2:]
    print(f'Inference time: {per_frame * 1000:.1f} ms per {h}x{w} frame (float32, {device}, '
          f'{torch.get_num_threads()} threads).')
    return 0 if all_ok else 1


if __name__ == '__main__':
    run_tool(main)
