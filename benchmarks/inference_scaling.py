"""How MemDeblurNet's inference time and memory grow with sequence length.

    python benchmarks/inference_scaling.py [--size 128 --lengths 4 8 16 32]

Runs the released configuration (random weights; speed does not depend on them) in eval mode,
float32, on whole sequences of increasing length, and reports seconds per frame and peak
memory (CUDA allocator on a GPU; the process's peak resident set on a CPU, which with lengths in
increasing order is the peak of the longest run so far). Ratios to
the shortest sequence are the numbers to compare across machines. The eval-mode memory window
(test_mem_length) bounds the banks, so time per frame should stay flat; memory still grows with
T because all frames and outputs are held at once (the bounded-memory tool on the roadmap
streams them instead).
"""
import argparse
import resource
import time

import torch

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.archs.memdeblur_arch import MemDeblurNet


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=128, help='frame height and width')
    parser.add_argument('--lengths', type=int, nargs='+', default=[4, 8, 16, 32])
    args = parser.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    net = MemDeblurNet().eval().to(device)
    rows = []
    for length in sorted(args.lengths):
        frames = torch.rand(1, length, 3, args.size, args.size, device=device)
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            net(frames)
        if device.type == 'cuda':
            torch.cuda.synchronize()
            memory = torch.cuda.max_memory_allocated() / 2**20
        else:
            memory = peak_rss_mib()
        rows.append((length, (time.perf_counter() - start) / length, memory))
    print(f'\nMemDeblurNet (released configuration), {args.size}x{args.size}, {device}\n')
    print('| frames | s/frame | time/frame vs shortest | peak memory (MiB) |')
    print('|---|---|---|---|')
    for length, per_frame, memory in rows:
        print(f'| {length} | {per_frame:.3f} | {per_frame / rows[0][1]:.2f}x | {memory:.0f} |')


if __name__ == '__main__':
    main()
