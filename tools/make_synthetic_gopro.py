"""Make a small GOPRO-like data set from photographs bundled with scikit-image (memdeblur.data.synthetic).

examples:
  python tools/make_synthetic_gopro.py datasets/synthetic_gopro                 # the demo's set (5 s)
  python tools/make_synthetic_gopro.py datasets/syn_large --train-seqs 40 --height 256 --width 384

Writes <root>/{train,test}/<SEQ>/{blur,blur_gamma,sharp}/%06d.png (GOPRO_Large's layout) and
<root>/settings.json. Each sequence is a virtual camera wandering over a photograph (translation,
rotation, zoom) with an independently moving cut-out in front; each blurry frame averages
--subframes sharp sub-frames in linear light (blur_gamma) or in sRGB (blur), its sharp frame is
the middle one. The defaults give blur as strong as GOPRO's (README, "Quick start"). Seeded:
the same arguments write the same files. Refuses a non-empty output folder.
"""
import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.data.synthetic import SyntheticSettings, write_synthetic_gopro
from memdeblur.cli.command_line import int_at_least, run_tool, tool_parser


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    defaults = SyntheticSettings()
    parser = tool_parser(__doc__)
    parser.add_argument('root', help='output folder (new or empty)')
    parser.add_argument('--train-seqs', type=int_at_least(0), default=defaults.splits['train'],
                        help='training sequences')
    parser.add_argument('--test-seqs', type=int_at_least(0), default=defaults.splits['test'],
                        help='held-out test sequences')
    parser.add_argument('--frames', type=int_at_least(1), default=defaults.num_frames, help='frames per sequence')
    # below 8 pixels the moving cut-out (a fifth to a third of the frame) would have no pixels
    parser.add_argument('--height', type=int_at_least(8), default=defaults.height,
                        help='frame height in pixels (at least 8)')
    parser.add_argument('--width', type=int_at_least(8), default=defaults.width,
                        help='frame width in pixels (at least 8)')
    parser.add_argument('--subframes', type=int_at_least(1), default=defaults.subframes,
                        help='sharp sub-frames averaged into one blurry frame (GOPRO_Large: 7 to 13)')
    parser.add_argument('--seed', type=int_at_least(0), default=defaults.seed, help='seed of everything')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.train_seqs + args.test_seqs == 0:
        parser.error('--train-seqs and --test-seqs are both 0: nothing to write.')
    written = write_synthetic_gopro(args.root, {'train': args.train_seqs, 'test': args.test_seqs}, args.frames,
                                    args.height, args.width, args.subframes, args.seed)
    print(f'Wrote {len(written)} sequences of {args.frames} {args.height}x{args.width} frames to {args.root}')
    return 0


if __name__ == '__main__':
    run_tool(main)
