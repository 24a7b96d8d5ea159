"""Deblur your own videos: a video file, a folder of frames, or a folder of sequence folders.

    python tools/deblur_video.py blurry.mp4 -o deblurred.mp4 --opt options/test_memdeblur_synthetic.yml
    python tools/deblur_video.py frames/ -o deblurred_frames/ --opt options/test_memdeblur_gopro_ds.yml \
        --ckpt memdeblur_gopro_ds.pth.tar --side-by-side
    python tools/deblur_video.py clips/ -o out/ --opt options/baselines/test_estrnn_b15c80_bsd_2ms16ms.yml
    torchrun --nproc_per_node=4 tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml
    python tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml --resume
    python tools/deblur_video.py blurry.mp4 -o deblurred.mp4 --ckpt memdeblur.onnx --backend openvino

No ground truth is needed. --opt takes any test options file: its network_g and its weights
(path:pretrain_network_g, or --ckpt; BasicSR or the authors' format) are used; MemDeblur,
ESTRNN and BasicVSR++ (any whole-clip network) are supported. A model exported by tools/export_onnx.py
(--ckpt model.onnx, no --opt) runs in ONNX Runtime or OpenVINO (--backend), with the same windows,
tiles, outputs and torchrun sharing; its window is the one it was exported for. Frames are read and written as a
stream and restored in overlapping windows (--window, --overlap), so memory does not grow with
the length of the video; large frames are restored in overlapping tiles (--tile, --tile-overlap).
Output: an mp4 (same frame rate, H.264 CRF 17, visually lossless) or a folder of PNG frames;
nothing existing is replaced without --force, and nothing is left behind when a run fails.
--summary writes what the last lines print (frames, seconds, peak memory per sequence) as JSON
for scripts. Library users get the same from memdeblur.inference.video_deblurring.VideoDeblurrer, and
frames in, frames out from memdeblur.inference.restorer.Restorer, which every path here goes through.
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
from memdeblur.media.inputs import find_inputs
from memdeblur.media.video_encoding import DEFAULT_CRF
from memdeblur.evaluation.no_reference import NIQE_MIN_SIDE
from memdeblur.inference.process_share import ProcessShare
from memdeblur.inference.run_plan import check_planned, file_digest, plan_run, resume_mismatch, run_record
from memdeblur.inference.onnx_backends import BACKENDS
from memdeblur.inference.restorer import AUTO_TILE, DEFAULT_OVERLAP, DEFAULT_WINDOW, Restorer, check_settings, \
    default_overlap
from memdeblur.inference.video_deblurring import VideoDeblurrer
from memdeblur.cli import input_path, int_at_least, run_tool, tool_parser
from memdeblur.networks.checkpoint import network_from_options, weights_source
from memdeblur.utils.devices import resolve_device
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import write_json_atomic
from memdeblur.utils.precision import PRECISIONS, refuse_float16_without_gpu
from memdeblur.utils.threads import process_governor
from memdeblur.run_options import read_options


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('input', type=input_path('the input'),
                        help='video file (mp4, mov, avi, ...), folder of frames, or folder of sequence folders')
    parser.add_argument('-o', '--output', required=True,
                        help='output .mp4 (or other video extension), or a folder for PNG frames; for several input '
                        'sequences a folder receiving one output per sequence')
    parser.add_argument('--opt', type=input_path('--opt'),
                        help='test options file giving network_g (and the weights); not with an exported '
                        '.onnx model')
    parser.add_argument('--ckpt', type=input_path('--ckpt'),
                        help='weights (default: the options file\'s path:pretrain_network_g), or an '
                        'exported .onnx model (tools/export_onnx.py)')
    parser.add_argument('--backend', choices=('pytorch', *BACKENDS), default=None,
                        help='pytorch for networks (default); onnxruntime (default for .onnx) or openvino (CPU, '
                        'float32 or bfloat16) for exported models')
    parser.add_argument('--format', choices=('auto', 'mp4', 'png'), default='auto',
                        help='output kind: auto (default) = mp4 when --output ends in a video extension, PNG frames '
                        'otherwise; with several sequences: png unless mp4 is given')
    parser.add_argument('--side-by-side', action='store_true', help='write input | deblurred side by side')
    parser.add_argument('--window', type=int, default=None,
                        help=f'frames restored together (default: {DEFAULT_WINDOW}; an exported model\'s own)')
    parser.add_argument('--overlap', type=int, default=None,
                        help=f'frames shared by consecutive windows (default: {DEFAULT_OVERLAP}; an exported model\'s '
                        'window: a fifth of it)')
    parser.add_argument('--tile', default='auto', type=tile_argument,
                        help=f'tile side in pixels, 0 = whole frames; auto (default): {AUTO_TILE} for frames larger '
                        f'than 1280x720, else whole frames')
    parser.add_argument('--tile-overlap', type=int, default=32,
                        help='pixels shared by neighbouring tiles (default: 32)')
    parser.add_argument('--device', default='auto', help='cpu, cuda, cuda:1, ... (default: cuda when available)')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='float32',
                        help='float32 (default); bfloat16 on CPUs with BF16 support or GPUs; float16 on GPUs')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='threads of the CPU\'s operators, fixed (default: chosen from the CPUs this process may '
                        'use and the load, and adapted while it runs; OMP_NUM_THREADS also fixes it)')
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
    """Refuse values the restoration would only fail on later, before anything is loaded (the restorer's own checks,
    named by their flags)."""
    if not is_exported(args.ckpt):  # an exported model's window is known once it is read (the restorer checks)
        window = DEFAULT_WINDOW if args.window is None else args.window
        check_settings(window, default_overlap(window, False) if args.overlap is None else args.overlap, args.tile,
                       args.tile_overlap, args.exact, name=lambda setting: '--' + setting.replace('_', '-'))
    if not 0 <= args.crf <= 63:
        raise OptionError(f'--crf {args.crf}: need a value from 0 (lossless) to 51 (H.264) or 63 (VP9).')
    refuse_float16_without_gpu(args.precision, device.type, '--precision')
    exported = is_exported(args.ckpt)
    if exported and args.opt:
        raise OptionError(f'--ckpt {args.ckpt} is an exported model (it holds its network): drop --opt.')
    if not exported and not args.opt:
        raise OptionError('--opt: give the test options file of the network (or --ckpt an exported .onnx model).')
    if not exported and args.backend not in (None, 'pytorch'):
        raise OptionError(f'--backend {args.backend} runs exported models: export the network first, e.g. python '
                          f'tools/export_onnx.py CHECKPOINT --opt {args.opt} -o model.onnx --frames '
                          f'{DEFAULT_WINDOW if args.window is None else args.window}, then give --ckpt model.onnx.')


def is_exported(path):
    """Whether ``--ckpt`` names an exported ONNX model."""
    return bool(path) and path.lower().endswith('.onnx')


def build_restorer(args, opt, export, device):
    """The ``Restorer`` of the command line: the options file's network, or the exported model as ``load_export``
    read it, as the flags say."""
    settings = dict(device=device, precision=args.precision, window=args.window, overlap=args.overlap,
                    tile=args.tile, tile_overlap=args.tile_overlap, exact=args.exact, scratch=args.scratch)
    if export is not None:
        return Restorer(export, backend=args.backend, fast=not args.plain, compile_net=args.compile, **settings)
    return Restorer(network_from_options(opt, args.opt, args.ckpt), fast=not args.plain, compile_net=args.compile,
                    **settings)


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


def run_settings(args, opt, export):
    """What determines a run's outputs, as plain values: ``--resume`` keeps only outputs made with the same. An
    exported model's weights are its checked digest (``load_export``: graph and weights, not its metadata)."""
    if export is not None:
        info = export.info
        source = {'network': {'type': info['network'], **(info['network_options'] or {})},
                  'weights': info['model_sha256'], 'exported_frames': info['frames']}
        window = info['output_frames'] if args.window is None else args.window
        backend = args.backend or BACKENDS[0]
        exported = True
    else:
        weights = weights_source(opt, args.ckpt)
        source = {'network': json.loads(json.dumps(opt['network_g'], sort_keys=True, default=str)),
                  'weights': file_digest(weights.file) if weights.file and os.path.isfile(weights.file) else None,
                  'param_key_g': weights.param_key, 'strict_load_g': weights.strict}
        window, backend, exported = DEFAULT_WINDOW if args.window is None else args.window, 'pytorch', False
    overlap = default_overlap(window, exported) if args.overlap is None else args.overlap
    return {**source, **{f'--{name.replace("_", "-")}': getattr(args, name) for name in RESULT_FLAGS},
            '--window': window, '--overlap': overlap, '--backend': backend,
            '--fps': None if args.fps is None else str(args.fps)}


# the flags that change what a run writes (besides --window, --overlap, --backend and --fps, recorded as they take
# effect)
RESULT_FLAGS = ('format', 'side_by_side', 'tile', 'tile_overlap', 'precision', 'plain', 'codec', 'pix_fmt',
                'crf', 'exact', 'report')


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
    device = resolve_device(args.device, share.local_rank, '--device')
    if device.type == 'cpu':
        governor = process_governor(args.threads)
        if share.rank == 0:
            print(f'threads: {governor.describe()}', flush=True)
    check_arguments(args, device)
    opt, export = None, None
    if is_exported(args.ckpt):  # read and checked once, for the settings and the restorer
        from memdeblur.inference.onnx_export import load_export  # the onnx package, only for exported models
        export = load_export(args.ckpt)
    else:
        opt = read_options(args.opt)
    inputs = find_inputs(args.input, args.fps)
    plans = plan_run(inputs, args.output, args.format, args.report, args.summary)
    read_paths = [args.input, *(seq.path for seq in inputs)]  # no output may be, hold or lie in one of these
    settings = run_settings(args, opt, export)
    if args.resume:
        plans = resumable(plans, settings, share)
    check_planned(plans, args.summary, read_paths, args.force)
    share.barrier()  # every process has checked the outputs before any writes one
    deblurrer = VideoDeblurrer(build_restorer(args, opt, export, device), side_by_side=args.side_by_side,
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
