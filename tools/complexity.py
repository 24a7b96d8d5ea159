"""Parameters and multiply-accumulates per frame of the network of an options file, in two conventions.

    python tools/complexity.py -opt options/test_memdeblur_gopro_ds.yml
    python tools/complexity.py -opt options/paper/train_table1_slim.yml --size 540x960 --frames 100
    python tools/complexity.py -opt options/test_memdeblur_gopro_ds.yml --run cpu --run-frames 3
    python tools/complexity.py --all                      # every options file -> options/README.md

Columns: the authors' convention (thop module hooks, as their released cost_profile: convolutions,
normalisations and activations counted, the memory attention's matrix products not) and an
exact count (torch.utils.flop_counter: every convolution and matrix product, attention included,
its share shown separately; element-wise work not counted). Counting runs on PyTorch's meta device
(shapes only, no arithmetic), so even 100 frames at 720x1280 need no memory for feature maps.
--run also times a real forward pass and reports its peak memory on the device given.
"""
import csv
import glob
import json
import os
import os.path as osp
import time
from multiprocessing import get_context

import torch

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers the archs)
from basicsr.archs import build_network

from memdeblur.networks.traits import network_traits
from memdeblur.evaluation.complexity import network_complexity
from memdeblur.utils.peak_memory import peak_rss_mib
from memdeblur.cli.command_line import frame_size, input_path, int_at_least, run_tool, tool_parser
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import write_text_atomic
from memdeblur.run_options import read_options

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(REPO_ROOT, 'options', 'README.md')
FIGURES = osp.join(REPO_ROOT, 'options', 'paper', 'figures.csv')
BEGIN, END = '<!-- complexity table: begin (tools/complexity.py --all) -->', '<!-- complexity table: end -->'


def build_parser():
    """The command line of this tool (``--help`` shows the module docstring and every default)."""
    parser = tool_parser(__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('-opt', type=input_path('-opt'), metavar='OPTIONS.yml',
                        help='options file whose network_g is counted')
    target.add_argument('--all', action='store_true',
                        help='count every options file under options/ and write the table (see --out)')
    parser.add_argument('--size', type=frame_size, default=(720, 1280), metavar='HxW',
                        help='frame size (default: 720x1280, as the paper)')
    parser.add_argument('--frames', type=int_at_least(1), default=100,
                        help='sequence length (default: 100, as the authors)')
    parser.add_argument('--run', choices=('cpu', 'cuda'), help='also time a real forward pass on this device '
                        '(default: count only)')
    parser.add_argument('--run-frames', type=int_at_least(1), default=3, help='frames of the timed run (default: 3)')
    parser.add_argument('--out', default=README, help='with --all: Markdown file to write; options/README.md '
                        '(the default) gets the table between its markers, any other file is written whole')
    parser.add_argument('--jobs', type=int_at_least(1), default=min(2, os.cpu_count() or 1),
                        help='with --all: networks counted in parallel (default: min(2, CPUs))')
    return parser


def network_options(path):
    """The options file's ``network_g``."""
    opt = read_options(path)
    if not isinstance(opt.get('network_g'), dict):
        raise OptionError(f'{path} has no network_g section.')
    return opt['network_g']


def build(network_opt):
    """(network, the padding it runs with) of a ``network_options`` dict."""
    net = build_network(network_opt)
    return net, network_traits(net).padding()


def count(network_opt, size, frames):
    """Complexity of one network configuration per restored frame (``network_complexity``: a sliding-window
    network on one window), at the padded size it runs at, as a plain dict (picklable for worker processes)."""
    net, padding = build(network_opt)
    result = network_complexity(net, *padding.target(*size), frames)
    return {**vars(result), 'attention_share': result.attention_share}


def timed_run(network_opt, size, frames, device):
    """(ms per frame, peak memory in MiB) of an eval forward pass over ``frames`` random frames."""
    net, padding = build(network_opt)
    if network_traits(net).restores_windows:
        raise ValueError('--run times whole-clip networks; time a sliding-window network (EDVR) with tools/test.py.')
    net = net.eval().to(device)
    inputs = torch.rand(1, frames, 3, *padding.target(*size), device=device)
    rss_before = peak_rss_mib()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        start = time.perf_counter()
        net(inputs)
        if device == 'cuda':
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # growth of the process's peak resident memory
        peak = peak_rss_mib() - rss_before
    return 1000 * seconds / frames, peak


def options_files():
    found = glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')) + glob.glob(osp.join(REPO_ROOT, 'options', '*',
                                                                                     '*.yml'))
    return sorted(osp.relpath(p, REPO_ROOT) for p in found)


def paper_figures():
    with open(FIGURES) as f:
        return {row['row']: row for row in csv.DictReader(f)}


def table_rows(files, networks):
    """(label, network, figures key) per row: a train/test pair with one network shares a row."""
    groups = {}
    for path in files:
        folder, name = osp.split(path)
        stem = osp.splitext(name)[0]
        key = stem.split('_', 1)[1] if stem.startswith(('train_', 'test_')) else stem
        groups.setdefault((folder, key), []).append(path)
    rows = []
    for (folder, key), paths in sorted(groups.items()):
        same = len(paths) == 2 and networks[paths[0]] == networks[paths[1]]
        if same:
            rows.append((f'{folder}/{{train,test}}_{key}.yml', networks[paths[0]], key))
        else:
            rows += [(path, networks[path], key) for path in paths]
    return rows


def table(args):
    """Markdown table of every options file (a train/test pair with one network on one row), each
    distinct network counted once."""
    files = options_files()
    networks = {path: network_options(osp.join(REPO_ROOT, path)) for path in files}
    distinct = {json.dumps(n, sort_keys=True): n for n in networks.values()}
    with get_context('spawn').Pool(max(1, args.jobs)) as pool:
        counted = pool.starmap(count, [(n, args.size, args.frames) for n in distinct.values()])
    results = dict(zip(distinct, counted))
    figures = paper_figures()
    h, w = args.size
    lines = [f'GMACs per frame at {h}x{w} over {args.frames} frames (`python tools/complexity.py --all`); '
             'paper figures where the paper or the authors give them (`options/paper/figures.csv`).', '',
             '| options | params (M) | GMACs, authors\' convention | GMACs, exact | of which attention | '
             'paper GMACs | paper PSNR |', '|---|---|---|---|---|---|---|']
    for label, network, key in table_rows(files, networks):
        r = results[json.dumps(network, sort_keys=True)]
        paper = figures.get(key, {})
        lines.append(f'| `{label}` | {r["parameters"] / 1e6:.3f} | {r["thop_gmacs"]:.2f} | {r["exact_gmacs"]:.2f} | '
                     f'{r["attention_gmacs"]:.2f} ({100 * r["attention_share"]:.0f}%) | '
                     f'{paper.get("paper_gmacs") or "-"} | {paper.get("paper_psnr") or "-"} |')
    return '\n'.join(lines) + '\n'


def write_table(text, out):
    """Write the table to ``out`` whole; options/README.md gets it between its markers."""
    if osp.abspath(out) != osp.abspath(README):
        write_text_atomic(out, text)
        return
    with open(README) as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        raise OptionError(f'{README} lacks the markers {BEGIN!r} ... {END!r}.')
    head, rest = readme.split(BEGIN, 1)
    write_text_atomic(README, head + BEGIN + '\n' + text + END + rest.split(END, 1)[1])


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.all:
        write_table(table(args), args.out)
        print(f'Wrote the complexity of {len(options_files())} options files to {args.out}')
        return 0
    network_opt = network_options(args.opt)
    r = count(network_opt, args.size, args.frames)
    h, w = args.size
    print(f'{args.opt}: {network_opt["type"]}, {r["parameters"] / 1e6:.3f} M parameters; per frame at {h}x{w} over '
          f'{args.frames} frames:')
    print(f'  authors\' convention (thop module hooks):   {r["thop_gmacs"]:8.2f} GMACs')
    print(f'  exact (torch.utils.flop_counter):         {r["exact_gmacs"]:8.2f} GMACs, of which attention '
          f'{r["attention_gmacs"]:.2f} ({100 * r["attention_share"]:.1f}%)')
    if args.run:
        ms, peak = timed_run(network_opt, args.size, args.run_frames, args.run)
        print(f'  run on {args.run} ({args.run_frames} frames, float32, eval): {ms:.1f} ms per frame, peak memory '
              f'{peak:.0f} MiB')
    return 0


if __name__ == '__main__':
    run_tool(main)
