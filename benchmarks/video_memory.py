"""Peak memory and speed of tools/deblur_video.py against the length of the video, end to end.

    python benchmarks/video_memory.py                                   # 720x1280, 30 and 300 frames
    python benchmarks/video_memory.py --modes windows exact --lengths 30 300 1000 --device cuda

For each length a synthetic mp4 is written (photos moving under a wandering camera, as in the
synthetic training data), then the tool restores it in a fresh process per cell, as a user runs
it: decode, restore (released network, random weights: time and memory do not depend on them),
encode. Modes: ``windows`` (the default: overlapping windows, frames streamed) and ``exact``
(--exact: whole-sequence results, states in scratch files). The peak memory is the one the tool
reports (the process's peak resident memory on a CPU, CUDA allocations on a GPU); for ``exact``
the scratch folder's size on disk is sampled every second as well. Writes Markdown to --out
(default benchmarks/results/video_memory_<device>.md).
"""
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

import numpy as np
import torch
import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import memdeblur  # noqa: F401,E402,I001
from memdeblur.archs.memdeblur_arch import MemDeblurNet  # noqa: E402
from memdeblur.media.images import to_integer_image  # noqa: E402
from memdeblur.data.synthetic import MotionSettings, SequenceRenderer  # noqa: E402
from memdeblur.cli.command_line import frame_size, tool_parser  # noqa: E402
from memdeblur.evaluation.results_table import write_lines  # noqa: E402
from memdeblur.media.writers import VideoFileWriter  # noqa: E402


def build_parser():
    parser = tool_parser(__doc__)
    parser.add_argument('--size', type=frame_size, default=(720, 1280), metavar='HxW',
                        help='frame size (default: 720x1280)')
    parser.add_argument('--lengths', type=int, nargs='+', default=[30, 300], help='frames per video (default: 30 300)')
    parser.add_argument('--modes', nargs='+', choices=('windows', 'exact'), default=['windows', 'exact'],
                        help='the tool\'s default windows and/or --exact (default: both)')
    parser.add_argument('--device', default='cpu', help='the tool\'s --device (default: cpu)')
    parser.add_argument('--precision', default='float32', help='the tool\'s --precision (default: float32)')
    parser.add_argument('--out', help='Markdown report (default: benchmarks/results/video_memory_<device>.md)')
    return parser


def write_synthetic_video(path, length, height, width, seed=0):
    """An mp4 of ``length`` frames of moving photos (30 fps)."""
    renderer = SequenceRenderer(np.random.default_rng(seed), height, width, length, MotionSettings())
    with VideoFileWriter(path, Fraction(30)) as writer:
        for step in range(length):
            writer.write(to_integer_image(renderer.render(step)))


def disk_usage_mib(folder):
    """Bytes allocated on disk under ``folder``, in MiB (files may vanish while counting)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(osp.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total / 2**20


def run_tool(video, output, options, mode, args, scratch):
    """Runs the tool once; returns (frames, seconds, frames/s, peak MiB, peak scratch MiB)."""
    summary = osp.splitext(output)[0] + '_summary.json'
    command = [sys.executable, osp.join(REPO_ROOT, 'tools', 'deblur_video.py'), video, '-o', output, '--opt', options,
               '--device', args.device, '--precision', args.precision, '--scratch', scratch, '--summary', summary]
    command += ['--exact'] if mode == 'exact' else []
    scratch_peak = 0.0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, 'PYTHONPATH': REPO_ROOT}) as process:
        while process.poll() is None:
            scratch_peak = max(scratch_peak, disk_usage_mib(scratch))
            time.sleep(1)
        _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed:\n{stderr[-3000:]}')
    with open(summary) as f:
        result = json.load(f)['sequences'][0]
    return (result['frames'], result['seconds'], result['frames_per_second'], result['peak_memory_mib'],
            scratch_peak)


def main():
    args = build_parser().parse_args()
    height, width = args.size
    lines = [f'# tools/deblur_video.py: peak memory against video length ({args.device})', '',
             f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}'
             + (f', {torch.cuda.get_device_name()}' if args.device.startswith('cuda') else '') + '.',
             f'Command: `python benchmarks/{osp.basename(__file__)} {" ".join(sys.argv[1:])}`', '',
             f'Released network (random weights), {height}x{width}, {args.precision}, the tool\'s defaults otherwise '
             '(fast path; windows of 30 frames overlapping by 6); one fresh process per row, timed end to end '
             '(decode, restore, encode).', '',
             '| mode | frames | peak memory (MiB) | vs the shortest | s/frame | scratch on disk (MiB) |',
             '|---|---|---|---|---|---|']
    with tempfile.TemporaryDirectory(prefix='memdeblur_video_memory_') as work:
        weights, options = osp.join(work, 'released.pth'), osp.join(work, 'released.yml')
        torch.manual_seed(0)
        torch.save({'params': MemDeblurNet().state_dict()}, weights)
        with open(options, 'w') as f:
            yaml.safe_dump({'network_g': {'type': 'MemDeblurNet'}, 'path': {'pretrain_network_g': weights}}, f)
        videos = {}
        for length in args.lengths:
            videos[length] = osp.join(work, f'{length}.mp4')
            write_synthetic_video(videos[length], length, height, width)
        for mode in args.modes:
            shortest = None
            for length in args.lengths:
                scratch = tempfile.mkdtemp(dir=work)
                output = osp.join(work, f'out_{mode}_{length}.mp4')
                frames, seconds, _, peak, scratch_peak = run_tool(videos[length], output, options, mode, args, scratch)
                assert frames == length, (frames, length)
                shortest = shortest or peak
                lines.append(f'| {mode} | {length} | {peak:.0f} | {peak / shortest:.2f} | {seconds / frames:.2f} | '
                             + (f'{scratch_peak:.0f} ({scratch_peak / frames:.1f} per frame)' if mode == 'exact'
                                else '-') + ' |')
                print(lines[-1], flush=True)
                os.remove(osp.join(work, f'out_{mode}_{length}.mp4'))
    out = args.out or osp.join(REPO_ROOT, 'benchmarks', 'results', f'video_memory_{args.device.split(":")[0]}.md')
    write_lines(out, lines)
    print(f'Wrote {out}')


if __name__ == '__main__':
    main()
