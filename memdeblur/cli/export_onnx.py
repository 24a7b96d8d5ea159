"""Export a deblurring network to ONNX, verified in ONNX Runtime against PyTorch before it is written.

    python tools/export_onnx.py pretrained/memdeblur_synthetic.pth -o synthetic.onnx \
        --opt options/test_memdeblur_synthetic_pretrained.yml --frames 6 --size 128x192
    python tools/export_onnx.py memdeblur_gopro_ds.pth.tar -o memdeblur.onnx
    python tools/export_onnx.py memdeblur_gopro_ds.pth.tar -o memdeblur.onnx --frames 20 --size 544x960
    python tools/export_onnx.py estrnn.pth.tar -o estrnn.onnx --opt options/baselines/test_estrnn_b15c80_gopro.yml

CHECKPOINT is in the authors' or BasicSR's format; --opt names the options file whose network_g it fits (default:
the released MemDeblur). The model takes (1, T, 3, H, W) float32 frames in [0, 1] (T = --frames) and gives the
restored clip, as the network's forward: T frames for MemDeblur, T - past - future for ESTRNN. It is traced at
--size, the smallest frames it runs; it runs at every larger size whose sides are multiples of the network's
size multiple (16 for the released MemDeblur: no padding inside; 4 for ESTRNN). MemDeblur traced below its
smallest dynamic side (272 for the released model: its coarsest memory keys must hold more than top_k positions,
or the trace keeps a full softmax where larger frames take the top-k one) gives a model fixed to --size.
The model is run in ONNX Runtime on a clip at the traced size and one multiple larger and compared with the
network in PyTorch (float32); a model differing by more than --tolerance is not written. The frame count, margins,
sizes, network and checkpoint travel in the file's metadata (memdeblur.runtime.backends.export_file.read_export_info),
with SHA-256 digests of the model and of that metadata: a file changed after its export is refused wherever it is
read (tools/deblur_video.py --ckpt model.onnx). Needs pip install 'memdeblur[onnx]'.
"""
from memdeblur.cli.command_line import frame_size, input_path, int_at_least, run_tool, tool_parser
from memdeblur.export.onnx_export import export_onnx
from memdeblur.networks.checkpoint import network_from_options
from memdeblur.networks.traits import network_traits
from memdeblur.utils.padding import round_up
from memdeblur.run_options import read_options
from memdeblur.utils.option_check import OptionError

# The released network, as options/test_memdeblur_gopro_ds.yml declares it (MemDeblurNet's defaults), built in so
# that an installed ``memdeblur-export`` needs no options file; every value is recorded in the export's metadata.
RELEASED = {'network_g': {'type': 'MemDeblurNet', 'mid_channels': 64, 'num_blocks_forward': 30,
                          'num_blocks_backward': 10, 'scales': [4, 2, 1], 'mem_every': [1, 2, 5], 'test_mem_length': 5,
                          'top_k': 20}}
SMALLEST_DEFAULT_SIDE = 64  # the default size for networks that could be traced smaller


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('checkpoint', type=input_path('CHECKPOINT'), metavar='CHECKPOINT',
                        help="weights, in the authors' or BasicSR's format")
    parser.add_argument('-o', '--output', required=True, metavar='OUT.onnx', help='the ONNX model to write')
    parser.add_argument('--opt', type=input_path('--opt'),
                        help='options file whose network_g the checkpoint fits (default: the released '
                        'MemDeblur, as options/test_memdeblur_gopro_ds.yml)')
    parser.add_argument('--frames', type=int_at_least(1), default=10,
                        help='frames per clip, T (the trace unrolls the loop over frames; default: 10)')
    parser.add_argument('--size', type=frame_size, metavar='HxW',
                        help='traced frame size, the smallest the model runs; sides must be multiples of the '
                        "network's size multiple (default: the smallest square from which the model runs at every "
                        f'larger size, at least {SMALLEST_DEFAULT_SIDE}: 272x272 for the released MemDeblur)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest difference from PyTorch allowed (default: 1e-4)')
    parser.add_argument('--force', action='store_true', help='replace an existing output')
    return parser


def default_size(net):
    """The smallest square size from which an export of ``net`` runs at every larger size."""
    traits = network_traits(net)
    side = round_up(max(traits.traced_min_side, SMALLEST_DEFAULT_SIDE), traits.traced_size_multiple)
    return side, side


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.tolerance > 0:
        raise OptionError(f'--tolerance must be positive, got {args.tolerance}.')
    opt = read_options(args.opt) if args.opt else RELEASED
    net = network_from_options(opt, args.opt or 'the released network', args.checkpoint)
    info = export_onnx(net, args.output, args.frames, args.size or default_size(net),
                       network_options=dict(opt['network_g']), checkpoint=args.checkpoint, tolerance=args.tolerance,
                       overwrite=args.force)
    height, width = info['min_size']
    sizes = (f'any size from {height}x{width} with sides that are multiples of {info["size_multiple"]}'
             if info['dynamic_size'] else f'{height}x{width} only')
    print(f'{args.output}: (1, {info["frames"]}, 3, H, W) -> (1, {info["output_frames"]}, 3, H, W), {sizes}')
    return 0


def run():
    """The ``memdeblur-export`` command."""
    run_tool(main)
