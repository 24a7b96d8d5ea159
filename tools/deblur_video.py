"""Deblur your own videos: a video file, a folder of frames, or a folder of sequence folders.

    python tools/deblur_video.py blurry.mp4 -o deblurred.mp4 --opt options/test_memdeblur_synthetic.yml
    python tools/deblur_video.py frames/ -o deblurred_frames/ --opt options/test_memdeblur_gopro_ds.yml \
        --ckpt memdeblur_gopro_ds.pth.tar --side-by-side
    python tools/deblur_video.py clips/ -o out/ --opt options/baselines/test_estrnn_b15c80_bsd_2ms16ms.yml
    torchrun --nproc_per_node=4 tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml
    python tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml --resume

No ground truth is needed. --opt takes any test options file: its network_g and its weights
(path:pretrain_network_g, or --ckpt; BasicSR or the authors' format) are used; MemDeblur,
ESTRNN and BasicVSR++ (any whole-clip network) are supported. Frames are read and written as a
stream and restored in overlapping windows (--window, --overlap), so memory does not grow with
the length of the video; large frames are restored in overlapping tiles (--tile, --tile-overlap).
Output: an mp4 (same frame rate, H.264 CRF 17, visually lossless) or a folder of PNG frames;
nothing existing is replaced without --force, and nothing is left behind when a run fails.
--summary writes what the last lines print (frames, seconds, peak memory per sequence) as JSON
for scripts. Library users get the same from memdeblur.inference.video_deblurring.VideoDeblurrer.
Under torchrun the sequences of a folder are shared between the processes (each on its own GPU
where there are GPUs), or, with fewer sequences than processes, the windows of each sequence;
either way they write what one process writes. --resume skips the outputs that exist.

--exact (MemDeblur) restores each sequence as one whole instead of in windows: the outputs equal
whole-sequence processing (bit for bit on the CPU), with memory still bounded because the
per-frame states live in scratch files (--scratch: about 21 MB per 720p frame for the released
network, removed afterwards) and the encoder is recomputed. Its time and memory, and the
windows', are measured in docs/benchmarks.md.
"""
import argparse
import json
import math
import os
import tempfile
from fractions import Fraction

import av
import torch

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers everything)
from memdeblur.data.video_io import DEFAULT_CRF, find_inputs
from memdeblur.evaluation.no_reference import NIQE_MIN_SIDE
from memdeblur.inference.process_share import ProcessShare
from memdeblur.inference.run_plan import check_planned, file_digest, plan_run, resume_mismatch, run_record
from memdeblur.inference.video_deblurring import AUTO_TILE, MIN_TILE, VideoDeblurrer
from memdeblur.cli import run_tool, tool_parser
from memdeblur.utils.checkpoint import network_from_options, weights_source
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import write_json_atomic
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu
from memdeblur.utils.run_options import read_options


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
    parser.add_argument('--fps', type=frame_rate, help='frame rate of video output for frame folders, e.g. 25 or '
                        '30000/1001 (default: 30; videos keep their own timestamps)')
    parser.add_argument('--codec', help='video codec of video output (default: libx264; libvpx-vp9 for .webm)')
    parser.add_argument('--pix-fmt', type=pixel_format,
                        help='pixel format of video output, e.g. yuv420p10le to keep 10-bit input in 10 bits (default: '
                        'yuv420p, 8-bit; yuv444p for odd frame sizes)')
    parser.add_argument('--crf', type=int, default=DEFAULT_CRF,
                        help='constant rate factor of video output: lower is better and larger (0-51)')
    parser.add_argument('--exact', action='store_true',
                        help='MemDeblur only: restore each sequence as one whole, outputs equal to whole-sequence '
                        'processing, memory bounded by scratch files (no windows, no tiles)')
    parser.add_argument('--scratch', default=tempfile.gettempdir(),
                        help='folder for --exact\'s scratch files (about 21 MB per 720p frame, removed afterwards)')
    parser.add_argument('--report', action='store_true',
                        help='also write a report for footage without ground truth beside each output: edge '
                        'sharpness and NIQE of every input and output frame, <output>_report.csv and a plot of both '
                        'over time, <output>_report.png (NIQE costs seconds per large frame)')
    parser.add_argument('--summary', metavar='FILE.json',
                        help='also write the per-sequence summary (frames, seconds, peak memory) as JSON')
    parser.add_argument('--resume', action='store_true',
                        help='skip the outputs that exist (outputs are written whole or not at all): finishes an '
                        'interrupted run over a folder of sequences')
    parser.add_argument('--force', action='store_true', help='replace existing outputs')
    return parser


def choose_device(name, local_rank=0):
    """The ``--device`` asked for (``auto``: this process's GPU under torchrun, when there are GPUs); a clear error
    when it is not on this machine."""
    if name == 'auto':
        return torch.device(f'cuda:{local_rank % torch.cuda.device_count()}' if torch.cuda.is_available() else 'cpu')
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


def frame_rate(text):
    """``--fps``: a positive number or fraction such as 25 or 30000/1001."""
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or rate <= 0:
        raise argparse.ArgumentTypeError(f'expected a positive frame rate such as 25 or 30000/1001, got {text!r}')
    return rate


def pixel_format(text):
    """``--pix-fmt``: a pixel format FFmpeg knows."""
    try:
        av.VideoFormat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'not a pixel format FFmpeg knows: {text!r} (e.g. yuv420p, yuv420p10le)'
                                         ) from err
    return text


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
    if args.tile not in ('auto', 0) and args.tile < MIN_TILE:
        raise OptionError(f'--tile {args.tile}: tiles of fewer than {MIN_TILE} pixels leave the network too little to '
                          f'see; give --tile 0 (whole frames) or a side of at least {MIN_TILE}.')
    if not 0 <= args.crf <= 63:
        raise OptionError(f'--crf {args.crf}: need a value from 0 (lossless) to 51 (H.264) or 63 (VP9).')
    refuse_float16_without_gpu(args.precision, device.type, '--precision')


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.resume and args.force:
        raise OptionError('--resume keeps the outputs that exist, --force replaces them: give one of the two.')
    share = ProcessShare(use_gpus=args.device in ('auto', 'cuda') and torch.cuda.is_available())
    try:
        status = deblur_everything(args, share)
    except BaseException as err:
        share.close(err)  # the others stop too; a process other than 0 leaves the error to process 0
        raise
    share.close()
    return status


def run_settings(args, opt):
    """What determines a run's outputs, as plain values: ``--resume`` keeps only outputs made with the same."""
    weights, param_key, strict = weights_source(opt, args.ckpt)
    return {'network': json.loads(json.dumps(opt['network_g'], sort_keys=True, default=str)),
            'weights': file_digest(weights) if weights and os.path.isfile(weights) else None,
            'param_key_g': param_key, 'strict_load_g': strict,
            **{f'--{name.replace("_", "-")}': getattr(args, name) for name in RESULT_FLAGS},
            '--fps': None if args.fps is None else str(args.fps)}


# the flags that change what a run writes (--fps is recorded as text)
RESULT_FLAGS = ('format', 'side_by_side', 'window', 'overlap', 'tile', 'tile_overlap', 'precision', 'plain', 'codec',
                'pix_fmt', 'crf', 'exact', 'report')


def resumable(plans, settings, share):
    """The plans ``--resume`` must still do; outputs made with other settings are refused, named with what differs."""
    done = [plan for plan in plans if os.path.lexists(plan.output)]
    mismatches = [(plan.output, resume_mismatch(plan.output, plan.seq, settings)) for plan in done]
    mismatches = [(output, why) for output, why in mismatches if why]
    if mismatches:
        shown = '; '.join(f'{output} ({why})' for output, why in mismatches[:3])
        more = f' and {len(mismatches) - 3} more' if len(mismatches) > 3 else ''
        raise OptionError(f'--resume: {len(mismatches)} existing output(s) were made otherwise than this run would '
                          f'make them: {shown}{more}. Remove them, or rerun everything with --force instead of '
                          '--resume.')
    if share.rank == 0:
        print(f'--resume: {len(done)} of {len(plans)} outputs exist and are kept')
    return [plan for plan in plans if not os.path.lexists(plan.output)]


def deblur_everything(args, share):
    """Deblur every input sequence this process's share holds (all of them without torchrun)."""
    device = choose_device(args.device, share.local_rank)
    check_arguments(args, device)
    opt = read_options(args.opt)
    inputs = find_inputs(args.input, args.fps)
    plans = plan_run(inputs, args.output, args.format, args.report, args.summary)
    read_paths = [args.input, *(seq.path for seq in inputs)]  # no output may be, hold or lie in one of these
    settings = run_settings(args, opt)
    if args.resume:
        plans = resumable(plans, settings, share)
    check_planned(plans, args.summary, read_paths, args.force)
    share.barrier()  # every process has checked the outputs before any writes one
    deblurrer = VideoDeblurrer(
        network_from_options(opt, args.opt, args.ckpt), device, args.precision, fast=not args.plain,
        compile_net=args.compile, window=args.window, overlap=args.overlap, tile=args.tile,
        tile_overlap=args.tile_overlap, exact=args.exact, scratch=args.scratch, side_by_side=args.side_by_side,
        codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt, report=args.report)

    def deblur(plan, shared):
        result = deblurrer.deblur(plan.seq, plan.output, read_paths, args.force, share=share if shared else None,
                                  record=run_record(plan.seq, settings))
        if result is not None:
            print_summary(result)
        return result

    if len(plans) >= share.world_size:  # each process its own sequences
        summaries = [deblur(plan, shared=False) for plan in share.mine(plans)]
    else:  # fewer sequences than processes: all restore each sequence together, its windows shared
        summaries = [result for result in (deblur(plan, shared=True) for plan in plans) if result is not None]
    summaries = share.finish(summaries)
    if args.summary and share.rank == 0:
        write_json_atomic(args.summary, {'sequences': summaries})
    return 0


def print_summary(result):
    """The lines a user reads after each sequence."""
    name = result['sequence']
    print(f'{name}: {result["frames"]} frames -> {result["output"]} ({result["seconds"]:.1f} s, '
          f'{result["frames_per_second"]:.2f} frames/s; peak memory so far {result["peak_memory_mib"]:.0f} MiB '
          f'({result["peak_memory_kind"]}))', flush=True)
    for note in result['notes']:
        print(f'  {name}: {note}')
    if 'report' in result:
        means = result['report']['means']
        if math.isnan(means['niqe_input']):
            niqe = f'NIQE not computed (frames under {NIQE_MIN_SIDE} pixels a side)'
        else:
            niqe = f'NIQE {means["niqe_input"]:.2f} -> {means["niqe_output"]:.2f}'
        print(f'  {name}: edge sharpness {means["sharpness_input"]:.1f} -> {means["sharpness_output"]:.1f}, '
              f'{niqe} (means over the frames; {result["report"]["csv"]}, {result["report"]["plot"]})', flush=True)


if __name__ == '__main__':
    run_tool(main)
