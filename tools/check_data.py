"""Decode every frame of every data set in an options file and list every problem found.

    python tools/check_data.py -opt options/train_memdeblur_gopro_ds.yml

Checks each entry under `datasets:` as training or testing would use it: its options (unknown
or mistyped keys), its folders or LMDBs (missing sequences, frames, keys, truncated data.mdb,
corrupt meta_info.txt or sequence tables), clip and crop sizes, and then decodes every blurry
and sharp frame (truncated or corrupt images, transparency, corrupt LMDB values). Unlike
training, it does not stop at the first problem: it lists them all, then exits with status 1
if there were any (0 when everything is usable). Run it before a long training run.
"""
import memdeblur  # noqa: F401,I001  (first: makes basicsr importable)
from memdeblur.data.data_check import check_datasets
from memdeblur.cli.command_line import input_path, run_tool, tool_parser
from memdeblur.run_options import read_options


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('-opt', required=True, type=input_path('-opt'), metavar='OPTIONS.yml',
                        help='options file whose datasets are checked (train or test options)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars (default: shown)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    reports = check_datasets(read_options(args.opt), progress=not args.no_progress)
    total = 0
    for report in reports:
        status = f'{len(report.problems)} problem(s)' if report.problems else 'OK'
        print(f'datasets:{report.phase} ({report.dataroot}): {report.sequences} sequences, {report.frames} frames: '
              f'{status}')
        for problem in report.problems:
            print(f'  - {problem}')
        total += len(report.problems)
    print(f'{total} problem(s) found.' if total else 'All data sets are usable.')
    return 1 if total else 0


if __name__ == '__main__':
    run_tool(main)
