"""Convert GOPRO_Large (or the synthetic set) into BasicSR LMDBs, the ESTRNN LMDB or a downsampled copy.

    # BasicSR LMDBs: datasets/GOPRO_lmdb/{train,test}/{blur,blur_gamma,sharp}.lmdb
    python tools/prepare_gopro.py datasets/GOPRO_Large datasets/GOPRO_lmdb --format lmdb
    # ESTRNN/MemDeblur LMDB of downsampled GOPRO (540x960 from blur_gamma), name gopro_ds
    python tools/prepare_gopro.py datasets/GOPRO_Large datasets/gopro_ds_lmdb --format estrnn_lmdb --size 540x960
    # a downsampled GOPRO_Large-layout folder
    python tools/prepare_gopro.py datasets/GOPRO_Large datasets/GOPRO_ds --format folder --size 540x960

Sizes are HEIGHTxWIDTH, as in every tool.

Every sequence is checked first (missing or mismatched frames fail with their names). Existing
outputs are never replaced unless --force is given, and a destination that is, contains or lies
inside the source is refused.
"""
import os.path as osp

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.utils.errors import DataError
from memdeblur.data.prepare import write_basicsr_lmdb, write_estrnn_lmdb, write_gopro_folder
from memdeblur.cli.command_line import frame_size, input_path, run_tool, tool_parser
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import check_output_location, plain_name_problem


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('src', type=input_path('the GOPRO folder'), help='GOPRO_Large folder (with train/ and test/)')
    parser.add_argument('dst', help='output folder')
    parser.add_argument('--format', choices=('lmdb', 'estrnn_lmdb', 'folder'), required=True,
                        help='lmdb: BasicSR LMDBs per split and folder; estrnn_lmdb: the LMDB ESTRNN and MemDeblur '
                        'ship; folder: a GOPRO_Large-layout copy (with --size)')
    parser.add_argument('--splits', nargs='+', default=['train', 'test'], help='splits to convert')
    parser.add_argument('--blur-dirs', nargs='+', choices=('blur', 'blur_gamma'),
                        help='blurry folders to convert (default: both for lmdb, blur_gamma otherwise)')
    parser.add_argument('--size', type=frame_size, metavar='HxW',
                        help='resize every frame, e.g. 540x960 (default: keep the size)')
    parser.add_argument('--name', help='ESTRNN data set name (default gopro_ds with --size, else gopro_ori)')
    parser.add_argument('--force', action='store_true', help='replace existing outputs')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    blur_dirs = args.blur_dirs or (['blur', 'blur_gamma'] if args.format == 'lmdb' else ['blur_gamma'])
    name = args.name or ('gopro_ds' if args.size else 'gopro_ori')
    if plain_name_problem(name):
        raise OptionError(f'--name {name!r}: {plain_name_problem(name)}.')
    if args.format == 'estrnn_lmdb' and len(blur_dirs) != 1:
        raise OptionError('the ESTRNN LMDB holds one blurry version; pass a single --blur-dirs value.')
    if not osp.isdir(args.src):
        raise DataError(f'Source {args.src} is not a folder.')
    check_output_location(args.dst, [args.src])
    for split in args.splits:
        if plain_name_problem(split):
            raise OptionError(f'--splits {split!r}: {plain_name_problem(split)}.')
        split_root = osp.join(args.src, split)
        if args.format == 'lmdb':
            written = write_basicsr_lmdb(split_root, osp.join(args.dst, split), blur_dirs, args.size,
                                         args.force)
        elif args.format == 'estrnn_lmdb':
            written = write_estrnn_lmdb(split_root, args.dst, name, split, blur_dirs[0], args.size, args.force)
        else:
            written = write_gopro_folder(split_root, osp.join(args.dst, split), blur_dirs, args.size,
                                         args.force)
        print(f'{split}: wrote {len(written)} outputs under {args.dst}')
    return 0


if __name__ == '__main__':
    run_tool(main)
