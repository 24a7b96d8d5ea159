"""Inference speed and memory of MemDeblur: plain vs fast path vs bfloat16, as ratios within one run.

    python benchmarks/inference.py                         # 256x256, released network, CPU
    python benchmarks/inference.py --sizes 256x256 540x960 --frames 6 --lengths 10 30 100
    python benchmarks/inference.py --device cuda --precisions float32 float16 bfloat16

Measures, in one process on a quiet machine:
1. the machine's 3x3 64->64 convolution throughput (channels-last; float32 and bfloat16), the
   ceiling the network's own throughput is compared with;
2. ms/frame of the released network per frame size: plain (the network as it is), fast float32
   (BatchNorm folded, channels-last, inference mode) and fast reduced precision, with achieved
   GMAC/s (authors' convention) and the speed-up over plain;
3. peak memory against sequence length: whole-sequence processing vs streamed windows restored
   as tools/deblur_video.py does (``restore_stream``, ``window_restorer``), each length in a
   fresh process.
Writes Markdown to --out (default benchmarks/results/inference_<device>.md).
"""
import os
import os.path as osp
import platform
import subprocess
import sys
import time

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import memdeblur  # noqa: F401,E402,I001
from memdeblur.archs.fast_inference import fast_restore_fn  # noqa: E402
from memdeblur.archs.memdeblur_arch import MemDeblurNet  # noqa: E402
from memdeblur.utils.cli import frame_size, tool_parser  # noqa: E402
from memdeblur.utils.complexity import measure_complexity  # noqa: E402
from memdeblur.utils.results_table import write_lines  # noqa: E402

MEMORY_CHILD = """
import sys, torch
sys.path.insert(0, {root!r})
import memdeblur
from memdeblur.archs.fast_inference import fast_restore_fn, inference_runner
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.memory import peak_rss_mib
from memdeblur.video.windowed_restorer import restore_stream, window_restorer
length, size, mode = {length}, {size}, {mode!r}
frames = (torch.randint(0, 256, (3, *size), dtype=torch.uint8) for _ in range(length))
if mode == 'whole':
    fast_restore_fn(MemDeblurNet(), 'cpu')(torch.stack(list(frames)).float() / 255)
else:  # as tools/deblur_video.py
    restore = window_restorer(*inference_runner(MemDeblurNet(), 'cpu'), torch.device('cpu'), margins=(0, 0), tile=0,
                              tile_overlap=0)
    for _ in restore_stream(restore, frames, window=10, overlap=2):
        pass
print('PEAK', peak_rss_mib())
"""


def parse_args():
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: cpu)')
    parser.add_argument('--sizes', nargs='+', type=frame_size, default=[(256, 256)], metavar='HxW',
                        help='frame sizes (default: 256x256)')
    parser.add_argument('--frames', type=int, default=8, help='frames per timed sequence (default: 8)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='timed rounds; each mode\'s fastest round counts (default: 3)')
    parser.add_argument('--precisions', nargs='+', default=['bfloat16'],
                        help='reduced precisions to time besides float32 (default: bfloat16)')
    parser.add_argument('--lengths', nargs='*', type=int, default=[10, 30],
                        help='sequence lengths of the memory measurement at 128x128 (default: 10 30; none: skip)')
    parser.add_argument('--out', help='Markdown report (default: benchmarks/results/inference_<device>.md)')
    return parser.parse_args()


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def fastest_seconds(fns, device, rounds):
    """Fastest time of each of ``fns`` over ``rounds`` rounds that call them in turn (after one warm-up call each).

    Interleaving makes a drift in the machine's speed (other tenants, clock changes) hit every
    mode alike, and the fastest call is the one least disturbed, so the ratios are comparable.
    """
    for fn in fns:
        fn()
    best = [float('inf')] * len(fns)
    for _ in range(rounds):
        for index, fn in enumerate(fns):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def conv_throughput(device, dtype):
    """GMAC/s of a 3x3 64->64 convolution on a (4, 64, 256, 256) channels-last input."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    x = torch.rand(4, 64, 256, 256, device=device).to(memory_format=torch.channels_last)
    macs = 4 * 64 * 64 * 9 * 256 * 256
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        return macs / fastest_seconds([lambda: conv(x)], device, rounds=5)[0] / 1e9


def main():
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = MemDeblurNet().eval()
    reduced = {'bfloat16': torch.bfloat16, 'float16': torch.float16}
    lines = [f'# MemDeblur inference benchmark ({device.type})', '',
             f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch '
             f'{torch.__version__}, {torch.get_num_threads()} threads'
             + (f', {torch.cuda.get_device_name()}' if device.type == 'cuda' else '') + '.',
             f'Command: `python benchmarks/{osp.basename(__file__)} {" ".join(sys.argv[1:])}`', '']
    ceiling = {'float32': conv_throughput(device, None)}
    for name in args.precisions:
        ceiling[name] = conv_throughput(device, reduced[name])
    lines += [f'Each time is the fastest of {args.rounds} rounds that run the modes in turn.', '',
              '3x3 64->64 convolution, channels-last: ' + ', '.join(f'{k} {v:.0f} GMAC/s' for k, v in ceiling.items()),
              '', '| size | mode | ms/frame | speed-up vs plain | GMAC/s achieved | of the conv ceiling | PSNR vs plain (dB) |',
              '|---|---|---|---|---|---|---|']
    for size in args.sizes:
        gmacs = measure_complexity(net, *size, args.frames).thop_gmacs
        clip = torch.rand(args.frames, 3, *size)
        modes = [('plain float32', fast_restore_fn(net, device, fast=False), 'float32'),
                 ('fast float32', fast_restore_fn(net, device), 'float32')]
        modes += [(f'fast {p}', fast_restore_fn(net, device, precision=p), p) for p in args.precisions]
        reference = modes[0][1](clip)
        times = fastest_seconds([lambda restore=restore: restore(clip) for _, restore, _ in modes], device, args.rounds)
        for (label, restore, precision), seconds in zip(modes, times):
            ms = 1000 * seconds / args.frames
            mse = ((restore(clip) - reference)**2).mean().item()
            psnr = '-' if label.startswith('plain') else ('inf' if mse == 0 else f'{-10 * torch.log10(torch.tensor(mse)):.1f}')
            achieved = gmacs / seconds * args.frames
            lines.append(f'| {size[0]}x{size[1]} | {label} | {ms:.1f} | {times[0] / seconds:.2f} | {achieved:.0f} | '
                         f'{100 * achieved / ceiling[precision]:.0f}% | {psnr} |')
            print(lines[-1], flush=True)
    if args.lengths:
        lines += ['', 'Peak resident memory (MiB) at 128x128, released network, float32, fresh process per cell:', '',
                  '| frames | whole sequence | windows of 10 (overlap 2) |', '|---|---|---|']
        for length in args.lengths:
            cells = []
            for mode in ('whole', 'windowed'):
                code = MEMORY_CHILD.format(root=REPO_ROOT, length=length, size=(128, 128), mode=mode)
                out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
                cells.append(float(out.split('PEAK')[-1]))
            lines.append(f'| {length} | {cells[0]:.0f} | {cells[1]:.0f} |')
            print(lines[-1], flush=True)
    out = args.out or osp.join(REPO_ROOT, 'benchmarks', 'results', f'inference_{device.type}.md')
    write_lines(out, lines)
    print(f'Wrote {out}')


if __name__ == '__main__':
    main()
