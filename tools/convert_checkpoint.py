"""Convert an authors'-format checkpoint to BasicSR format.

    python tools/convert_checkpoint.py memdeblur_gopro_ds.pth.tar \
        experiments/pretrained_models/memdeblur_gopro_ds.pth

The output is ``{'params': state_dict}`` with this project's key names, checked key by key
and shape by shape against the network (the released configuration, or the ``network_g`` of
an options file given with ``--opt``). It never overwrites a file unless ``--force`` is given.
"""
import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers the archs)
from basicsr.archs import build_network

from memdeblur.networks.checkpoint import convert_checkpoint
from memdeblur.cli.command_line import input_path, run_tool, tool_parser
from memdeblur.utils.option_check import OptionError
from memdeblur.run_options import read_options


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('src', type=input_path('the checkpoint'), help='official checkpoint (.pth.tar with state_dict)')
    parser.add_argument('dst', help='output BasicSR checkpoint (.pth)')
    parser.add_argument('--opt', type=input_path('--opt'), help='options YAML whose network_g the weights must fit '
                        '(default: the released MemDeblurNet configuration)')
    parser.add_argument('--force', action='store_true', help='overwrite dst if it exists')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    network_opt = {'type': 'MemDeblurNet'}
    if args.opt:
        network_opt = read_options(args.opt).get('network_g')
        if not isinstance(network_opt, dict):
            raise OptionError(f'{args.opt} has no network_g section.')
    net = build_network(dict(network_opt))
    state_dict = convert_checkpoint(args.src, args.dst, net, overwrite=args.force)
    print(f'Converted {len(state_dict)} tensors for {network_opt["type"]}: {args.src} -> {args.dst}')
    return 0


if __name__ == '__main__':
    run_tool(main)
