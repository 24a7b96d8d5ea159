"""Training speed and memory of MemDeblur per training setting, and the quality of bfloat16 training, in one run.

    python benchmarks/training.py --authors-repo ../MemDeblur          # CPU, with the authors' trainer as reference
    python benchmarks/training.py --device cuda --authors-repo ../MemDeblur
    python benchmarks/training.py --quality                            # the synthetic recipe, float32 vs bfloat16

Speed: one full training step of the released network, as ``tools/train.py`` runs it for
options/train_memdeblur_gopro_ds.yml (BasicSR's ``build_model``; forward, loss, backward, gradient clipping at
20, Adam), on the same batch (``--clips`` clips of ``--frames`` frames at ``--size``, seeded) from the same
weights, for each mode:

* ``authors``: the authors' own model and loss (``model/memdeblur.py``, ``train/loss.py`` of a checkout of their
  repository, ``--authors-repo``), with ``clip_grad_norm_`` and Adam as their trainer calls them: the reference;
* ``float32``: our default options, the exact recipe;
* ``channels-last``: ``train.channels_last: true``;
* ``bfloat16``, ``bfloat16-channels-last``: ``train.precision: bfloat16`` (CPUs with BF16, GPUs);
* ``float16``, ``float16-channels-last``: ``train.precision: float16`` (GPUs);
* ``bfloat16-compile``: bfloat16, channels-last and ``train.compile: true`` (not in the default list: compiling
  takes minutes).

Each mode runs in a process of its own (our training sets the CPU allocator, the authors' process does not); the
processes alternate over ``--passes``, each timing ``--steps`` steps after a warm-up step, and a mode's figure is its
fastest step over all passes, so that a drift in the machine's speed hits every mode alike. Peak memory is the
process's resident memory on a CPU, CUDA's allocated memory on a GPU.

Quality (``--quality``, instead of the speed table): options/train_memdeblur_synthetic.yml trained once in float32
and once in bfloat16 with channels-last (as ``tools/demo.py`` trains on a CPU with BF16), same seed and iterations,
each tested with options/test_memdeblur_synthetic.yml on the held-out sequences (``tools/make_synthetic_gopro.py``'s
set in datasets/synthetic_gopro, made if missing); experiments/ and results/ get ``benchmark_synthetic_<precision>``.

Writes Markdown to ``--out`` (default benchmarks/results/training_<device>.md, training_quality_<device>.md).
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

import memdeblur  # noqa: F401,E402,I001
from memdeblur.cli.command_line import frame_size, tool_parser  # noqa: E402
from memdeblur.evaluation.results_table import write_lines  # noqa: E402
from memdeblur.evaluation.run_report import read_run_report  # noqa: E402

RELEASED_OPTIONS = osp.join(REPO_ROOT, 'options', 'train_memdeblur_gopro_ds.yml')
SYNTHETIC_TRAIN = osp.join('options', 'train_memdeblur_synthetic.yml')
SYNTHETIC_TEST = osp.join('options', 'test_memdeblur_synthetic.yml')
# mode -> the train options it sets (None: the authors' trainer)
MODES = {
    'authors': None,
    'float32': {},
    'channels-last': {'channels_last': True},
    'bfloat16': {'precision': 'bfloat16'},
    'bfloat16-channels-last': {'precision': 'bfloat16', 'channels_last': True},
    'float16': {'precision': 'float16'},
    'float16-channels-last': {'precision': 'float16', 'channels_last': True},
    'bfloat16-compile': {'precision': 'bfloat16', 'channels_last': True, 'compile': True},
}
DEFAULT_MODES = {
    'cpu': ['authors', 'float32', 'channels-last', 'bfloat16', 'bfloat16-channels-last'],
    'cuda': ['authors', 'float32', 'channels-last', 'bfloat16', 'bfloat16-channels-last', 'float16',
             'float16-channels-last'],
}


def build_parser():
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'], help='where to train (default: cpu)')
    parser.add_argument('--modes', nargs='+', choices=list(MODES),
                        help='what to time (default: every mode of the device, authors only with --authors-repo)')
    parser.add_argument('--authors-repo', help="a checkout of the authors' MemDeblur repository (the reference)")
    parser.add_argument('--size', type=frame_size, default=(128, 128), metavar='HxW', help='crop size (128x128)')
    parser.add_argument('--clips', type=int, default=2, help='clips per batch (default: 2)')
    parser.add_argument('--frames', type=int, default=6, help='frames per clip (default: 6)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per process (default: 3)')
    parser.add_argument('--passes', type=int, default=3, help='processes per mode, alternating (default: 3)')
    parser.add_argument('--quality', action='store_true',
                        help='instead: train the synthetic recipe in float32 and in bfloat16 and test both')
    parser.add_argument('--out', help='Markdown report (default: benchmarks/results/training[_quality]_<device>.md)')
    for internal in ('--child', '--weights', '--result'):  # a timed process's mode, weights file and result file
        parser.add_argument(internal, help=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------- one timed process

def batch(args, device):
    """The benchmark's batch: (lq, gt), each (clips, frames, 3, H, W) in [0, 1], the same in every process."""
    generator = torch.Generator().manual_seed(0)
    shape = (args.clips, args.frames, 3, *args.size)
    return (torch.rand(shape, generator=generator).to(device), torch.rand(shape, generator=generator).to(device))


def released_network_weights(path):
    """Random weights of the released network (seeded), saved for every process to load."""
    from memdeblur.archs.memdeblur_arch import MemDeblurNet
    torch.manual_seed(0)
    torch.save({'params': MemDeblurNet().state_dict()}, path)


def our_step(args, mode, device):
    """A function running one training step of ours in ``mode``, as ``tools/train.py`` runs it."""
    from basicsr.models import build_model

    from memdeblur.run_options import in_process_training_options, read_options
    # experiment folders beside the weights, in the parent's temporary folder, removed with it
    root = tempfile.mkdtemp(prefix=f'experiment_{mode}_', dir=osp.dirname(args.weights))
    opt = in_process_training_options(read_options(RELEASED_OPTIONS), root, num_gpu=int(device.type == 'cuda'))
    opt['train'] = {**opt['train'], **MODES[mode]}
    opt['path'].update(pretrain_network_g=args.weights, strict_load_g=True)
    opt['logger'] = {**opt['logger'], 'use_tb_logger': False}
    model = build_model(opt)
    lq, gt = batch(args, device)

    def step():
        model.feed_data({'lq': lq, 'gt': gt})
        model.optimize_parameters(1)
    return step, model.get_bare_model(model.net_g)


def authors_step(args, device):
    """A function running one step of the authors' trainer (their model, loss, clipping and Adam)."""
    import types

    from authors_code import authors_model_class
    from memdeblur.archs.memdeblur_arch import MemDeblurNet
    from memdeblur.networks.checkpoint import convert_official_state_dict
    Model = authors_model_class(args.authors_repo)
    from train.loss import Loss
    para = types.SimpleNamespace(model='memdeblur', mid_channels=64, mem_every=[1, 2, 5], num_blocks_forward=30,
                                 num_blocks_backward=10, scales=[4, 2, 1], test_mem_length=5,
                                 loss='1*L1_Charbonnier_loss_color')
    net = Model(para).to(device)
    official_names = convert_official_state_dict({k: k for k in net.state_dict()},  # ours -> theirs
                                                 MemDeblurNet.official_keys)
    ours = torch.load(args.weights, map_location=device, weights_only=True)['params']
    loaded = net.load_state_dict({official_names[k]: v for k, v in ours.items()}, strict=False)
    unused = ('model.conv_hr.', 'model.conv_last.')  # in their model and checkpoints, never used
    if loaded.unexpected_keys or any(not key.startswith(unused) for key in loaded.missing_keys):
        raise SystemExit(f"error: the authors' model did not take the benchmark's weights: {loaded}")
    net.train()
    criterion = Loss(para)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    lq, gt = batch(args, device)
    lq, gt = lq - 0.5, gt - 0.5  # their data pipeline centres the frames

    def step():
        losses = criterion(net([lq, gt]), gt)
        optimizer.zero_grad()
        losses['all'].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=20)
        optimizer.step()
        losses['all'].item()
    return step, net


def run_child(args):
    from memdeblur.utils.peak_memory import peak_rss_mib
    device = torch.device(args.device)
    step, net = authors_step(args, device) if args.child == 'authors' else our_step(args, args.child, device)
    start_weights = {k: v.clone() for k, v in net.state_dict().items()}
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    times = []
    for index in range(args.steps + 1):  # the first step warms up
        net.load_state_dict(start_weights)  # every step the same first step (random data diverges after a few)
        sync()
        start = time.perf_counter()
        step()
        sync()
        if index:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == 'cuda' else peak_rss_mib()
    with open(args.result, 'w') as f:
        json.dump({'times': times, 'peak_mib': peak}, f)


# ---------------------------------------------------------------- the parent: alternating processes

def time_modes(args, modes, workdir):
    """{mode: {'times': [...], 'peak_mib': [...]}} over ``args.passes`` alternating processes per mode."""
    weights = osp.join(workdir, 'weights.pth')
    released_network_weights(weights)
    results = {mode: {'times': [], 'peak_mib': []} for mode in modes}
    for index in range(args.passes):
        for mode in modes:
            result = osp.join(workdir, f'{mode}.json')
            command = [sys.executable, osp.abspath(__file__), '--child', mode, '--weights', weights, '--result', result,
                       '--device', args.device, '--size', f'{args.size[0]}x{args.size[1]}', '--clips',
                       str(args.clips), '--frames', str(args.frames), '--steps', str(args.steps)]
            if args.authors_repo:
                command += ['--authors-repo', args.authors_repo]
            subprocess.run(command, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
            with open(result) as f:
                measured = json.load(f)
            results[mode]['times'] += measured['times']
            results[mode]['peak_mib'].append(measured['peak_mib'])
            print(f'pass {index + 1}/{args.passes} {mode:24s} fastest step {min(measured["times"]):.3f} s, '
                  f'peak {measured["peak_mib"]:.0f} MiB', flush=True)
    return results


def speed_table(results, args):
    reference = 'authors' if 'authors' in results else None
    baseline = min(results['float32']['times']) if 'float32' in results else None
    lines = ['| mode | s/step (fastest) | median | vs float32 | vs authors | peak memory (MiB) |',
             '|---|---|---|---|---|---|']
    for mode, measured in results.items():
        fastest = min(measured['times'])
        vs_float32 = f'{baseline / fastest:.2f}x' if baseline else '-'
        vs_authors = f'{min(results[reference]["times"]) / fastest:.2f}x' if reference else '-'
        lines.append(f'| {mode} | {fastest:.3f} | {statistics.median(measured["times"]):.3f} | {vs_float32} | '
                     f'{vs_authors} | {max(measured["peak_mib"]):.0f} |')
    return lines


# ---------------------------------------------------------------- quality: the synthetic recipe twice

def run_tool(*command):
    print('$ python ' + ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], check=True, cwd=REPO_ROOT)


def quality(args):
    """Train options/train_memdeblur_synthetic.yml in float32 and in bfloat16 and test both: table lines."""
    if not osp.isdir(osp.join(REPO_ROOT, 'datasets', 'synthetic_gopro')):
        run_tool(osp.join('tools', 'make_synthetic_gopro.py'), osp.join('datasets', 'synthetic_gopro'))
    lines = ['| precision | training time | PSNR (BasicSR) | PSNR (released eval.) | SSIM | blurry input PSNR |',
             '|---|---|---|---|---|---|']
    for precision, extra in (('float32', []), ('bfloat16', ['train:channels_last=true'])):
        name = f'benchmark_synthetic_{precision}'
        start = time.perf_counter()
        run_tool(osp.join('tools', 'train.py'), '-opt', SYNTHETIC_TRAIN, '--force_yml', f'name={name}',
                 f'train:precision={precision}', *extra)
        seconds = time.perf_counter() - start
        weights = osp.join('experiments', name, 'models', 'net_g_latest.pth')
        run_tool(osp.join('tools', 'test.py'), '-opt', SYNTHETIC_TEST, '--force_yml', f'name={name}',
                 f'path:pretrain_network_g={weights}')
        result = read_run_report(osp.join(REPO_ROOT, 'results', name, 'SyntheticGOPRO_test'))
        average, blurry = result['average'], result['blurry_input_average']
        lines.append(f'| {precision} | {seconds / 60:.1f} min | {average["psnr"]:.4f} dB | '
                     f'{average["psnr_released"]:.4f} dB | {average["ssim"]:.4f} | {blurry["psnr"]:.4f} dB |')
    return lines


def machine():
    if torch.cuda.is_available() and torch.device('cuda').type == 'cuda':
        gpu = torch.cuda.get_device_name()
    else:
        gpu = 'none'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), CPU capability '
            f'{torch.backends.cpu.get_cpu_capability()}; GPU: {gpu}; torch {torch.__version__}, Python '
            f'{platform.python_version()}')


def main():
    args = build_parser().parse_args()
    if args.child:
        return run_child(args)
    kind = 'training_quality' if args.quality else 'training'
    out = args.out or osp.join(REPO_ROOT, 'benchmarks', 'results', f'{kind}_{args.device}.md')
    lines = [f'`python benchmarks/training.py {" ".join(sys.argv[1:])}`', '', f'{datetime.date.today()}; {machine()}.',
             '']
    if args.quality:
        lines = ['# bfloat16 against float32 training: the synthetic recipe', '', *lines,
                 f'`{SYNTHETIC_TRAIN}` (same seed and iterations) trained in each precision, tested with '
                 f'`{SYNTHETIC_TEST}` on the held-out synthetic sequences (frame averages).', '', *quality(args)]
    else:
        modes = args.modes or [m for m in DEFAULT_MODES[args.device] if m != 'authors' or args.authors_repo]
        if 'authors' in modes and not args.authors_repo:
            raise SystemExit('error: the authors mode needs --authors-repo (a checkout of their MemDeblur repository)')
        lines = [f'# Training step: speed and memory ({args.device})', '', *lines,
                 f'Released network, {args.clips} clips of {args.frames} frames at {args.size[0]}x{args.size[1]}, one '
                 f'step = forward, loss, backward, clipping, Adam; fastest of {args.steps} steps x {args.passes} '
                 'alternating processes per mode.', '']
        with tempfile.TemporaryDirectory() as workdir:
            lines += speed_table(time_modes(args, modes, workdir), args)
    write_lines(out, lines)
    print('\n'.join(lines))
    print(f'Written: {out}')


if __name__ == '__main__':
    main()
