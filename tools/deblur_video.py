"""Deblur your own videos: a video file, a folder of frames, or a folder of sequence folders.

    python tools/deblur_video.py blurry.mp4 -o deblurred.mp4 --opt options/test_memdeblur_synthetic.yml
    python tools/deblur_video.py frames/ -o deblurred_frames/ --opt options/test_memdeblur_gopro_ds.yml \
        --ckpt memdeblur_gopro_ds.pth.tar --side-by-side
    python tools/deblur_video.py clips/ -o out/ --opt options/baselines/test_estrnn_b15c80_bsd_2ms16ms.yml

No ground truth is needed. --opt takes any test options file: its network_g and its weights
(path:pretrain_network_g, or --ckpt; BasicSR or the authors' format) are used; MemDeblur and
ESTRNN (any whole-clip network) are supported. Frames are read and written as a stream and
restored in overlapping windows (--window, --overlap), so memory does not grow with the length
of the video (1280x720 on our CPU, released network, float32: 2.6 GB peak for 30 frames, 3.0 GB
for 300); large frames are restored in overlapping tiles (--tile, --tile-overlap). Output:
an mp4 (same frame rate, H.264 CRF 17, visually lossless) or a folder of PNG frames; nothing
existing is replaced without --force, and nothing is left behind when a run fails.

--exact (MemDeblur) restores each sequence as one whole instead of in windows: the outputs equal
whole-sequence processing (bit for bit on the CPU), with memory still bounded because the
per-frame states live in scratch files (--scratch) and the encoder is recomputed. It costs disk
space, about 21 MB per 720p frame for the released network (decoded input and states, removed
afterwards: 21 GB for 1000 frames), and time: 1.06x whole-sequence processing in memory
(measured on our CPU, released network, 12 frames of 128x128); windows recompute their overlaps.
At 1280x720 it peaked at 2.0 GB for 30 frames and 2.1 GB for 100 (benchmarks/video_memory.py).
"""
import argparse
import collections
import os.path as osp
import tempfile
import time
from fractions import Fraction

import numpy as np
import torch
from tqdm import tqdm

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers everything)
from basicsr.archs import build_network

from memdeblur.archs.fast_inference import inference_runner
from memdeblur.data.errors import DataError
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.checkpoint import load_pretrained
from memdeblur.utils.cli import run_tool, tool_parser
from memdeblur.utils.memory import peak_memory
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import check_outputs
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu
from memdeblur.utils.run_options import read_options
from memdeblur.video.exact_restorer import (FileFrames, RecomputedFrames, check_exact_supported, passes_per_frame,
                                             restore_exact)
from memdeblur.video.frame_tensors import to_float_frames, to_uint8_frames
from memdeblur.video.video_io import VIDEO_EXTENSIONS, VideoWriter, find_inputs, list_frame_files
from memdeblur.video.windowed_restorer import restore_stream, window_restorer

AUTO_TILE_AREA = 1280 * 720  # frames larger than this are tiled by default
AUTO_TILE = 512


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('input',
                        help='video file (mp4, mov, avi, ...), folder of frames, or folder of sequence folders')
    parser.add_argument('-o', '--output', required=True,
                        help='output .mp4 (or other video extension), or a folder for PNG frames; for several input '
                        'sequences a folder receiving one output per sequence')
    parser.add_argument('--opt', required=True, help='test options file giving network_g (and the weights)')
    parser.add_argument('--ckpt', help='weights (default: the options file\'s path:pretrain_network_g)')
    parser.add_argument('--format', choices=('auto', 'mp4', 'png'), default='auto',
                        help='output kind: auto (default) = mp4 when --output ends in a video extension, PNG frames '
                        'otherwise; with several sequences: png unless mp4 is given')
    parser.add_argument('--side-by-side', action='store_true', help='write input | deblurred side by side')
    parser.add_argument('--window', type=int, default=30, help='frames restored together (default: 30)')
    parser.add_argument('--overlap', type=int, default=6, help='frames shared by consecutive windows (default: 6)')
    parser.add_argument('--tile', default='auto', type=tile_argument,
                        help=f'tile side in pixels, 0 = whole frames; auto (default): {AUTO_TILE} for frames larger '
                        f'than 1280x720, else whole frames')
    parser.add_argument('--tile-overlap', type=int, default=32,
                        help='pixels shared by neighbouring tiles (default: 32)')
    parser.add_argument('--device', default='auto', help='cpu, cuda, cuda:1, ... (default: cuda when available)')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='float32',
                        help='float32 (default); bfloat16 on CPUs with BF16 support or GPUs; float16 on GPUs')
    parser.add_argument('--plain', action='store_true',
                        help='run the network as it is (default: the fast path: BatchNorm folded, channels-last, '
                        'in-place residuals; on a CPU, freed memory kept for reuse: memdeblur/utils/allocator.py)')
    parser.add_argument('--compile', action='store_true', help='torch.compile the network (default: off)')
    parser.add_argument('--fps', type=Fraction, help='frame rate of mp4 output for frame folders (default: 30; '
                        'videos keep their own)')
    parser.add_argument('--exact', action='store_true',
                        help='MemDeblur only: restore each sequence as one whole, outputs equal to whole-sequence '
                        'processing, memory bounded by scratch files (no windows, no tiles)')
    parser.add_argument('--scratch', default=tempfile.gettempdir(),
                        help='folder for --exact\'s scratch files (about 21 MB per 720p frame, removed afterwards)')
    parser.add_argument('--force', action='store_true', help='replace existing outputs')
    return parser


def load_network(opt, opt_path, ckpt):
    """(network, frame margins) from a test options file (read by ``read_options``); margins are ESTRNN's
    past/future frames."""
    if 'network_g' not in opt:
        raise DataError(f'{opt_path} has no network_g section.')
    if opt.get('model_type') == 'SlidingWindowModel':
        raise DataError(f'{opt_path}: sliding-window networks (EDVR) are tested with tools/test.py; this tool runs '
                        'whole-clip networks (MemDeblur, ESTRNN, BasicVSR++).')
    weights = ckpt or (opt.get('path') or {}).get('pretrain_network_g')
    if not weights:
        raise DataError(f'No weights: give --ckpt or set path:pretrain_network_g in {opt_path}.')
    net = load_pretrained(build_network(dict(opt['network_g'])), weights)
    margins = (net.past_frames, net.future_frames) if opt.get('model_type') == 'ESTRNNModel' else (0, 0)
    return net, margins


def plan_outputs(inputs, output, kind):
    """The output path of every input sequence."""
    if kind == 'auto':
        kind = 'mp4' if output.lower().endswith(VIDEO_EXTENSIONS) else 'png'
    elif kind == 'png' and output.lower().endswith(VIDEO_EXTENSIONS):
        raise DataError(f'--format png writes a folder of frames, but {output} is named like a video file; '
                        'name a folder, or drop --format png for a video.')
    if len(inputs) == 1:
        if kind == 'mp4' and not output.lower().endswith(VIDEO_EXTENSIONS):
            return [output + '.mp4']
        return [output]
    if output.lower().endswith(VIDEO_EXTENSIONS):
        raise DataError(f'{len(inputs)} input sequences need an output folder, not {output}.')
    return [osp.join(output, seq.name + ('.mp4' if kind == 'mp4' else '')) for seq in inputs]


def input_paths(args, inputs):
    """Everything the run reads, which no output may be, contain or lie inside."""
    return [args.input, *(seq.path for seq in inputs)]


def check_planned_outputs(args, inputs, outputs):
    """Refuse, before the network is loaded, outputs that ``VideoWriter`` would refuse after it."""
    for out in outputs:
        is_video = out.lower().endswith(VIDEO_EXTENSIONS)
        check_outputs(files=[out] if is_video else [], folders=[] if is_video else [out], overwrite=args.force,
                      inputs=input_paths(args, inputs))


def choose_device(name):
    """The ``--device`` asked for; a clear error when it is not on this machine."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise OptionError(f'--device {name}: not a device name ({err}).') from err
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        raise OptionError(f'--device {name}: this machine has {torch.cuda.device_count()} usable CUDA GPU(s); use '
                          '--device cpu or auto.')
    if device.type not in ('cpu', 'cuda'):
        raise OptionError(f'--device {name}: only cpu and cuda devices are supported.')
    return device


def tile_argument(text):
    """``--tile``: auto or a side in pixels (0: whole frames)."""
    if text == 'auto':
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'expected auto or a tile side in pixels (0: whole frames), got {text!r}')
    return int(text)


def check_arguments(args, device):
    """Refuse values the restoration would only fail on later."""
    if args.window < 1 or not 0 <= args.overlap < args.window:
        raise OptionError(f'--window {args.window} --overlap {args.overlap}: need window >= 1 and 0 <= overlap < '
                          'window.')
    if args.exact and args.tile not in ('auto', 0):
        raise OptionError('--exact restores whole frames; drop --tile (or use windows without --exact).')
    if args.tile not in ('auto', 0) and not 0 <= args.tile_overlap < args.tile:
        raise OptionError(f'--tile {args.tile} --tile-overlap {args.tile_overlap}: need 0 <= tile overlap < tile.')
    refuse_float16_without_gpu(args.precision, device.type, '--precision')


def tile_size(tile, height, width):
    if tile == 'auto':
        return AUTO_TILE if height * width > AUTO_TILE_AREA else 0
    return tile


def to_image(restored):
    """(3, H, W) uint8 -> (H, W, 3) numpy, as the writers take it."""
    return restored.permute(1, 2, 0).numpy()


def output_frame_names(seq):
    return None if seq.is_video_file else [osp.splitext(f)[0] for f in list_frame_files(seq.path)]


def deblur_sequence(seq, out_path, restore, args):
    """Stream one sequence through ``restore`` in windows into ``out_path``; returns the number of frames written."""
    originals = collections.deque()  # input frames waiting for their restored frame (for --side-by-side)

    def frames():
        for frame in seq.frames():
            if args.side_by_side:
                originals.append(frame)
            yield torch.from_numpy(frame).permute(2, 0, 1)

    with VideoWriter(out_path, seq.fps, output_frame_names(seq), args.inputs, args.force) as writer, tqdm(
            total=seq.num_frames or None, unit='frame', desc=seq.name) as bar:
        for restored in restore_stream(restore, frames(), args.window, args.overlap):
            image = to_image(restored)
            writer.write(np.concatenate([originals.popleft(), image], axis=1) if args.side_by_side else image)
            bar.update()
        return writer.count


def deblur_sequence_exact(seq, out_path, net, context, device, args):
    """Restore one sequence as a whole (``restore_exact``) into ``out_path``; returns the number of frames written."""
    with tempfile.TemporaryDirectory(prefix='memdeblur_exact_', dir=args.scratch) as scratch:
        decoded = FileFrames(osp.join(scratch, 'input.bin'), 0, torch.device('cpu'))
        try:
            for frame in tqdm(seq.frames(), total=seq.num_frames or None, unit='frame', desc=f'{seq.name} reading'):
                decoded.append(torch.from_numpy(frame))
            frames = RecomputedFrames(lambda frame: to_float_frames(frame.permute(2, 0, 1)), decoded)
            with VideoWriter(out_path, seq.fps, output_frame_names(seq), args.inputs, args.force) as writer, tqdm(
                    total=len(decoded) * passes_per_frame(net), unit='step', desc=f'{seq.name} exact') as bar:

                def write(index, restored):
                    image = to_image(to_uint8_frames(restored))
                    writer.write(np.concatenate([decoded[index].numpy(), image], axis=1) if args.side_by_side
                                 else image)

                with context():
                    restore_exact(net, frames, write, scratch, device, on_write=bar.update)
                return writer.count
        finally:
            decoded.close()


def main(argv=None):
    args = build_parser().parse_args(argv)
    device = choose_device(args.device)
    check_arguments(args, device)
    opt = read_options(args.opt)
    inputs = find_inputs(args.input, args.fps)
    outputs = plan_outputs(inputs, args.output, args.format)
    args.inputs = input_paths(args, inputs)
    check_planned_outputs(args, inputs, outputs)
    net, margins = load_network(opt, args.opt, args.ckpt)
    runner, context = inference_runner(net, device, args.precision, fast=not args.plain, compile_net=args.compile)
    if device.type == 'cpu' and not args.plain:
        retain_freed_memory()
    if args.exact:
        check_exact_supported(runner)
    for seq, out_path in zip(inputs, outputs):
        frames = seq.frames()
        first = next(frames, None)
        frames.close()
        if first is None:
            raise DataError(f'{seq.path} holds no frames.')
        start = time.perf_counter()
        if args.exact:
            count = deblur_sequence_exact(seq, out_path, runner, context, device, args)
        else:
            restore = window_restorer(runner, context, device, margins, tile_size(args.tile, *first.shape[:2]),
                                      args.tile_overlap)
            count = deblur_sequence(seq, out_path, restore, args)
        elapsed = time.perf_counter() - start
        print(f'{seq.name}: {count} frames -> {out_path} ({elapsed:.1f} s, {count / elapsed:.2f} frames/s; '
              f'peak memory so far {peak_memory(device)})')
    return 0


if __name__ == '__main__':
    run_tool(main)
