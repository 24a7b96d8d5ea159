"""Make a small GOPRO-like data set from photographs bundled with scikit-image (see memdeblur.data.synthetic).

    python tools/make_synthetic_gopro.py datasets/synthetic_gopro --train-seqs 6 --test-seqs 2 --frames 24

Writes <root>/{train,test}/<SEQ>/{blur,blur_gamma,sharp}/%06d.png: sharp sub-frames of a virtual
camera (translation, rotation, zoom) and an independently moving object, averaged in linear light
into each blurry frame. Seeded; refuses a non-empty output folder.
"""
import argparse
import sys

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.data.synthetic import write_synthetic_gopro


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', help='output folder (new or empty)')
    parser.add_argument('--train-seqs', type=int, default=6)
    parser.add_argument('--test-seqs', type=int, default=2)
    parser.add_argument('--frames', type=int, default=24, help='frames per sequence')
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=192)
    parser.add_argument('--subframes', type=int, default=7, help='sharp sub-frames per blurry frame')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        written = write_synthetic_gopro(args.root, {'train': args.train_seqs, 'test': args.test_seqs}, args.frames,
                                        args.height, args.width, args.subframes, args.seed)
    except FileExistsError as err:
        sys.exit(f'error: {err}')
    print(f'Wrote {len(written)} sequences of {args.frames} {args.height}x{args.width} frames to {args.root}')


if __name__ == '__main__':
    main()
