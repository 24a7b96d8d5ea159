"""Deblur your own videos: a video file, a folder of frames, or a folder of sequence folders.

    python tools/deblur_video.py samples/blurry_synthetic.mp4 -o deblurred.mp4 \
        --opt options/test_memdeblur_synthetic_pretrained.yml
    python tools/deblur_video.py frames/ -o deblurred_frames/ --opt options/test_memdeblur_gopro_ds.yml \
        --ckpt memdeblur_gopro_ds.pth.tar --side-by-side
    python tools/deblur_video.py clips/ -o out/ --opt options/baselines/test_estrnn_b15c80_bsd_2ms16ms.yml
    torchrun --nproc_per_node=4 tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml
    python tools/deblur_video.py clips/ -o out/ --opt options/test_memdeblur_gopro_ds.yml --resume
    python tools/deblur_video.py samples/blurry_synthetic.mp4 -o deblurred.mp4 --ckpt synthetic.onnx --backend openvino

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
for scripts. Library users get the same from memdeblur.video.job.VideoJob (or per sequence from
memdeblur.video.deblurrer.VideoDeblurrer), and frames in, frames out from memdeblur.runtime.Restorer, which every
path here goes through.
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
import tempfile
from fractions import Fraction

import av

from memdeblur.cli.command_line import input_path, int_at_least, run_tool, tool_parser
from memdeblur.media.video_encoding import DEFAULT_CRF
from memdeblur.runtime.backends import BACKENDS
from memdeblur.runtime.settings import AUTO_TILE, DEFAULT_OVERLAP, DEFAULT_TILE_OVERLAP, DEFAULT_WINDOW
from memdeblur.utils.precision import PRECISIONS
from memdeblur.video.job import VideoJob, run_video_job


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
    parser.add_argument('--backend', choices=list(BACKENDS), default=None,
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
    parser.add_argument('--tile-overlap', type=int, default=DEFAULT_TILE_OVERLAP,
                        help='pixels shared by neighbouring tiles')
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


def flag(setting):
    """A setting of ``VideoJob`` as its flag: ``side_by_side`` -> ``--side-by-side``."""
    return '--' + setting.replace('_', '-')


def main(argv=None):
    """Deblur what the command line ``argv`` says (``VideoJob``)."""
    args = build_parser().parse_args(argv)
    return run_video_job(VideoJob.from_namespace(args), name=flag, say=lambda line: print(line, flush=True))


def run():
    """The ``memdeblur-video`` command."""
    run_tool(main)
