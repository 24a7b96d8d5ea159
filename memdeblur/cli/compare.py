"""Compare trained models on the same test data: one table and one side-by-side image per sequence.

    python tools/compare.py -opt options/test_memdeblur_synthetic_pretrained.yml \
        -opt options/test_memdeblur_synthetic.yml --out results/compare_shipped_demo
    python tools/compare.py -opt options/test_memdeblur_synthetic.yml \
        -opt options/baselines/test_estrnn_synthetic.yml -opt options/baselines/test_edvr_synthetic.yml \
        -opt options/baselines/test_basicvsrpp_synthetic.yml --out results/compare_synthetic

The first compares the shipped model with the one python tools/demo.py trains; the second four networks
trained on the demo's data (each trained first with its options/baselines/train_*_synthetic.yml).

Tests each model in this process as tools/test.py does (BasicSR's model, memdeblur's evaluator),
one after another, each model's peak memory measured from the start of its test, on the same data: the test
sets of all files must agree, or --dataroot sets one for all. Writes to --out:
  comparison.md / comparison.csv  PSNR and SSIM under both conventions (BasicSR's, rounded to uint8;
                                  the released evaluation's, truncated, scikit-image SSIM), frames
                                  scored, parameters, GMACs (authors' convention and exact),
                                  ms/frame and peak memory, one row per model;
  <dataset>/<sequence>_<frame>.png  blurry | model A | model B | ... | sharp for the middle frame of
                                  every sequence, each panel labelled with its PSNR and edge
                                  sharpness (variance of the Laplacian), and below them
                                  the same zoomed crop of the region that moves most (where blurry
                                  and sharp differ most);
  results/<name>/                 each model's own tables and restored frames.
"""
import contextlib
import copy
import gc
import logging
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import torch

import basicsr.test
from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs
from basicsr.utils.options import dict2str

from memdeblur.basicsr_compat import trusted_pipeline
from memdeblur.media.images import to_integer_image, write_png
from memdeblur.cli.command_line import input_path, int_at_least, run_tool, tool_parser
from memdeblur.evaluation.comparison_image import comparison_image
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import staged_outputs
from memdeblur.utils.threads import process_governor
from memdeblur.evaluation.results_table import write_csv, write_markdown
from memdeblur.evaluation.run_report import read_run_report
from memdeblur.utils.allocator import release_freed_memory
from memdeblur.utils.peak_memory import reset_peak_memory
from memdeblur.run_options import check_test_options, read_options

METRICS = ('psnr', 'ssim', 'psnr_released', 'ssim_released')
SOURCE_KEYS = ('dataroot', 'layout', 'blur_dir', 'lmdb_name', 'split', 'frame_size')


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    parser.add_argument('-opt', action='append', required=True, type=input_path('-opt'), metavar='TEST.yml',
                        help='a test options file; give one per model (at least two)')
    parser.add_argument('--out', default=osp.join('results', 'compare'),
                        help='output folder (default: results/compare); an existing one is replaced only with --force, '
                        'and only when this tool wrote it')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='threads of the CPU\'s operators, fixed (default: chosen from the CPUs this process may '
                        'use and the load, and adapted while it runs; OMP_NUM_THREADS also fixes it)')
    parser.add_argument('--dataroot', type=input_path('--dataroot'),
                        help='test every model on this folder instead of its options file\'s dataroot')
    parser.add_argument('--crop', type=int, default=4,
                        help='the zoomed crop is 1/CROP of the frame\'s width and height (default: 4)')
    parser.add_argument('--force', action='store_true', help='write into a non-empty --out folder')
    return parser


def load_test_options(path, dataroot):
    opt = read_options(path)
    datasets = opt.get('datasets') or {}
    if len(datasets) != 1:
        raise OptionError(f'{path}: expected one test dataset under datasets:, found {list(datasets)}.')
    phase, dataset = next(iter(datasets.items()))
    if not isinstance(phase, str) or not phase.isidentifier():
        raise OptionError(f'{path}: the test dataset\'s key {phase!r} must be a plain word such as test.')
    if dataroot:
        dataset['dataroot'] = dataroot
    return opt, phase, dataset


def check_same_data(entries):
    """Refuse files whose test sets differ: a comparison on different data is meaningless."""
    reference = {k: entries[0]['dataset'].get(k) for k in SOURCE_KEYS}
    for entry in entries[1:]:
        source = {k: entry['dataset'].get(k) for k in SOURCE_KEYS}
        if source != reference:
            raise OptionError(f'{entry["path"]} tests on {source}, but {entries[0]["path"]} on {reference}; pass '
                              '--dataroot to test all on one folder.')
    names = [e['opt']['name'] for e in entries]
    if len(set(names)) != len(names):
        raise OptionError(f'Two options files share a name ({names}); their results would overwrite each other.')


@contextlib.contextmanager
def own_log(opt):
    """BasicSR's log of one model's test in its results folder, begun as ``tools/test.py`` begins it."""
    handler = logging.FileHandler(osp.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log'), 'w')
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
    logger = get_root_logger()
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def run_test(entry, out):
    """Test one options file in this process as ``tools/test.py`` does: BasicSR's options (``parse_options``),
    model and dataset, and the model's validation, which scores through ``memdeblur.evaluation.evaluator``; results
    under ``out/results/<name>``. The memory the models before it freed is given back and the peak measured anew, so
    that the report's peak memory is this model's (a process setting a model made, such as ``val.fast``'s allocator
    setting on a CPU, stays for the models after it)."""
    print(f'\n== {entry["opt"]["name"]}: {entry["path"]}', flush=True)
    opt = copy.deepcopy(entry['opt'])
    check_test_options(opt, entry['path'])
    opt['val']['save_img'] = True
    gc.collect()
    release_freed_memory()
    torch.backends.cudnn.benchmark = True  # as BasicSR's test pipeline
    with trusted_pipeline(opt, ['-opt', entry['path']]):
        opt, _ = basicsr.test.parse_options(osp.abspath(out), is_train=False)
        make_exp_dirs(opt)
        with own_log(opt):
            dataset = build_dataset(opt['datasets'][entry['phase']])
            if not reset_peak_memory(torch.device('cuda' if opt['num_gpu'] else 'cpu')):
                print('Note: this system cannot reset the peak memory; each model\'s includes the models before it.')
            model = build_model(opt)
            model.validation(SimpleNamespace(dataset=dataset), current_iter=opt['name'], tb_logger=None,
                             save_img=True)


def read_results(out, entry):
    """The JSON results (``memdeblur.evaluation.run_report``) of one finished run."""
    return read_run_report(osp.join(out, 'results', entry['opt']['name'], entry['dataset']['name']))


def table_rows(out, entries):
    rows = []
    for entry in entries:
        result = read_results(out, entry)
        row = {'model': entry['opt']['name'], 'network': result['network'], 'frames scored': result['frames_scored']}
        row.update({m: result['average'][m] for m in METRICS if m in result['average']})
        row.update({'params': f'{result["parameters"] / 1e6:.3f} M',
                    'GMACs (authors\')': f'{result["gmacs_authors"]:.2f}',
                    'GMACs (exact)': f'{result["gmacs_exact"]:.2f}',
                    'ms/frame': f'{1000 * result["seconds_per_frame"]:.1f}',
                    'peak memory': f'{result["peak_memory_mib"]:.0f} MiB ({result["peak_memory_kind"]})',
                    'border frames': result['border_frames']})
        rows.append(row)
    blurry = read_results(out, entries[0])
    blurry_row = {key: '' for key in rows[0]}
    blurry_row.update({'model': 'blurry input', 'frames scored': blurry['frames_scored'],
                       **{m: blurry['blurry_input_average'][m] for m in METRICS if m in blurry_row}})
    rows.append(blurry_row)
    return rows


def write_images(out, entries, crop_fraction):
    """One comparison image per sequence of the common test set; returns the paths written."""
    dataset = build_dataset({**entries[0]['dataset'], 'phase': entries[0]['phase'], 'num_frame': -1})
    written = []
    for seq_idx, seq in enumerate(dataset.source.sequences):
        frame_idx = len(seq) // 2
        frame = seq.frame_names[frame_idx]
        blurry, sharp = (to_integer_image(x[..., ::-1]) for x in dataset.source.read(seq_idx, frame_idx))
        outputs = []
        for entry in entries:
            path = osp.join(out, 'results', entry['opt']['name'], 'visualization', entry['dataset']['name'],
                            seq.name, f'{frame}.png')
            restored = cv2.imread(path)
            if restored is None:
                raise FileNotFoundError(f'{entry["opt"]["name"]} wrote no frame {path}.')
            outputs.append((entry['opt']['name'], restored))
        name = osp.join(entries[0]['dataset']['name'], f'{seq.name}_{frame}.png')
        os.makedirs(osp.dirname(osp.join(out, name)), exist_ok=True)
        write_png(osp.join(out, name), comparison_image(blurry, outputs, sharp, crop_fraction))
        written.append(name)
    return written


def main(argv=None):
    args = build_parser().parse_args(argv)
    process_governor(args.threads)
    if len(args.opt) < 2:
        raise OptionError('give at least two -opt files to compare.')
    entries = []
    for path in args.opt:
        opt, phase, dataset = load_test_options(path, args.dataroot)
        entries.append({'path': path, 'opt': opt, 'phase': phase, 'dataset': dataset})
    check_same_data(entries)
    inputs = [entries[0]['dataset']['dataroot'], *args.opt]
    with staged_outputs(folders=[args.out], overwrite=args.force, inputs=inputs, tool='tools/compare.py') as staging:
        out = staging[args.out]
        for entry in entries:
            run_test(entry, out)
        rows = table_rows(out, entries)
        images = write_images(out, entries, args.crop)
        write_csv(osp.join(out, 'comparison.csv'), rows)
        write_markdown(osp.join(out, 'comparison.md'), f'Comparison on {entries[0]["dataset"]["name"]}', rows,
                       {'data': entries[0]['dataset']['dataroot'],
                        'conventions': 'psnr/ssim: BasicSR (rounded to uint8); *_released: truncated to uint8, '
                                       'scikit-image SSIM; frame averages'})
    print(f'\nTable: {osp.join(args.out, "comparison.md")} (and .csv); {len(images)} comparison image(s) under '
          f'{osp.join(args.out, entries[0]["dataset"]["name"])}')
    return 0


def run():
    """The ``memdeblur-compare`` command."""
    run_tool(main)
