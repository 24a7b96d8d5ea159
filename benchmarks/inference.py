"""Inference speed and memory of MemDeblur: plain vs fast path vs bfloat16, as ratios within one run.

    python benchmarks/inference.py                         # 256x256, released network, CPU
    python benchmarks/inference.py --sizes 256x256 540x960 --frames 6 --lengths 10 30 100
    python benchmarks/inference.py --device cuda --precisions float32 float16 bfloat16

Measures, on a quiet machine:
1. the machine's 3x3 64->64 convolution throughput (channels-last; float32 and bfloat16), the
   ceiling the network's own throughput is compared with;
2. ms/frame of the released network per frame size: plain (the network as it is), fast float32
   (BatchNorm folded, channels-last, in-place residuals, inference mode) and fast reduced
   precision, with achieved GMAC/s (authors' convention) and the speed-up over plain. On a CPU
   the fast path's tools also keep freed memory in the process (``memdeblur.utils.allocator``), a
   setting of the whole process: each size is timed in child processes, one with glibc's default
   malloc (plain) and one with the retained heap (every mode), run alternately ``--passes`` times;
   within a child the modes run in turn over ``--rounds`` rounds, and each cell keeps its fastest;
3. peak memory against sequence length: whole-sequence processing vs streamed windows restored
   as tools/deblur_video.py does (``restore_stream``, ``window_restorer``, retained heap), each
   length in a fresh process.
Writes Markdown to --out (default benchmarks/results/inference_<device>.md).
"""
import json
import math
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
from memdeblur.inference.fast_path import fast_restore_fn  # noqa: E402
from memdeblur.archs.memdeblur_arch import MemDeblurNet  # noqa: E402
from memdeblur.utils.allocator import retain_freed_memory  # noqa: E402
from memdeblur.cli import frame_size, tool_parser  # noqa: E402
from memdeblur.evaluation.complexity import measure_complexity  # noqa: E402
from memdeblur.evaluation.results_table import write_lines  # noqa: E402

MEMORY_CHILD = """
import sys, torch
sys.path.insert(0, {root!r})
import memdeblur
from memdeblur.inference.fast_path import fast_restore_fn, inference_runner
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.memory import peak_rss_mib
from memdeblur.inference.windows import restore_stream, window_restorer
retain_freed_memory()
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
TIMING_CHILD = """
import json, sys
sys.path[:0] = [{root!r}, {here!r}]
from inference import time_modes
print('TIMES', json.dumps(time_modes(**{kwargs!r})))
"""
# The timed processes: (malloc setting, modes); a mode is (label, fast, precision).
PLAIN = ('plain float32', False, 'float32')


def parse_args():
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: cpu)')
    parser.add_argument('--sizes', nargs='+', type=frame_size, default=[(256, 256)], metavar='HxW',
                        help='frame sizes (default: 256x256)')
    parser.add_argument('--frames', type=int, default=8, help='frames per timed sequence (default: 8)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='timed rounds per process; each mode\'s fastest round counts (default: 3)')
    parser.add_argument('--passes', type=int, default=2,
                        help='times each timing process runs, alternating malloc settings (default: 2)')
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


def time_modes(device, size, frames, rounds, modes, retained):
    """Seconds per clip of each mode in this process (fastest of ``rounds`` rounds that run them in turn) and
    the PSNR of its output against the first mode's; ``retained``: keep freed memory first (a process setting).
    The network's weights and the clip come from fixed seeds, so every process times the same work."""
    if retained:
        retain_freed_memory()
    device = torch.device(device)
    torch.manual_seed(0)
    net = MemDeblurNet().eval()
    clip = torch.rand(frames, 3, *size)
    restorers = [fast_restore_fn(net, device, precision, fast=fast) for _, fast, precision in modes]
    times = fastest_seconds([lambda restore=restore: restore(clip) for restore in restorers], device, rounds)
    reference = restorers[0](clip)
    results = {}
    for (label, _, _), restore, seconds in zip(modes, restorers, times):
        mse = ((restore(clip) - reference)**2).mean().item()
        results[label] = (seconds, float('inf') if mse == 0 else -10 * math.log10(mse))
    return results


def timing_plan(device, precisions):
    """(malloc label, retained, modes) of the timing processes: on a CPU, plain under glibc's default malloc in
    one, every mode with the retained heap in the other (the fast path's setting); on a GPU one process."""
    modes = [PLAIN, ('fast float32', True, 'float32')] + [(f'fast {p}', True, p) for p in precisions]
    if device.type != 'cpu':
        return [('-', False, modes)]
    return [('glibc default', False, [PLAIN]), ('retained', True, modes)]


def timed_cells(args, device, size):
    """{(malloc label, mode label): (seconds per clip, PSNR vs plain)}, the fastest over ``args.passes``
    alternating runs of ``timing_plan``'s processes."""
    cells = {}
    for _ in range(args.passes):
        for malloc, retained, modes in timing_plan(device, args.precisions):
            kwargs = dict(device=str(device), size=tuple(size), frames=args.frames, rounds=args.rounds, modes=modes,
                          retained=retained)
            code = TIMING_CHILD.format(root=REPO_ROOT, here=osp.dirname(osp.abspath(__file__)), kwargs=kwargs)
            out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
            for label, (seconds, psnr) in json.loads(out.split('TIMES')[-1]).items():
                best = cells.get((malloc, label))
                cells[(malloc, label)] = (seconds, psnr) if best is None or seconds < best[0] else best
    return cells


def main():
    args = parse_args()
    device = torch.device(args.device)
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
    lines += [f'Each time is the fastest of {args.passes} x {args.rounds} rounds: the timing processes (one per '
              'malloc setting) run alternately, each running its modes in turn.', '',
              '3x3 64->64 convolution, channels-last: ' + ', '.join(f'{k} {v:.0f} GMAC/s' for k, v in ceiling.items()),
              '', '| size | mode | malloc | ms/frame | speed-up vs plain | GMAC/s achieved | of the conv ceiling | '
              'PSNR vs plain (dB) |', '|---|---|---|---|---|---|---|---|']
    for size in args.sizes:
        gmacs = measure_complexity(net, *size, args.frames).thop_gmacs
        cells = timed_cells(args, device, size)
        baseline = next(iter(cells.values()))[0]  # plain, glibc's default malloc on a CPU
        for (malloc, label), (seconds, psnr) in cells.items():
            precision = label.split()[-1]
            achieved = gmacs / seconds * args.frames
            psnr = '-' if label == PLAIN[0] else f'{psnr:.1f}'
            lines.append(f'| {size[0]}x{size[1]} | {label} | {malloc} | {1000 * seconds / args.frames:.1f} | '
                         f'{baseline / seconds:.2f} | {achieved:.0f} | {100 * achieved / ceiling[precision]:.0f}% | '
                         f'{psnr} |')
            print(lines[-1], flush=True)
    if args.lengths:
        lines += ['', 'Peak resident memory (MiB) at 128x128, released network, float32, retained heap (as the tools '
                  'run), fresh process per cell:', '',
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
