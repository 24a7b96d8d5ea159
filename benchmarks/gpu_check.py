"""One short GPU session: CUDA agrees with the CPU and the authors, trains, and float32 vs float16/bfloat16 timing.

    python benchmarks/gpu_check.py --fixtures ../shared/fixtures --out gpu_check.md

Meant for a machine with a CUDA GPU, run once per lent session (minutes). Sections:

1. correctness: the released network on the authors' test vectors, float64 on CUDA against the
   authors' outputs, and float32 CUDA against float32 CPU outputs (eval mode);
2. training: a few iterations of the synthetic recipe through BasicSR's ``train_pipeline`` on CUDA
   (model on the GPU, EMA, atomic checkpoint saving, validation);
3. speed: the released configuration (64 channels, 30+10 blocks) at 256x256 and 720x1280, eval:
   the plain network in float32 against the fast path (BatchNorm folded, channels-last, sparse
   read-outs) in float32, float16 and bfloat16, ms/frame and peak GPU memory as ratios to the
   plain float32 run of the same process, with the PSNR between each output and plain float32's;
4. memory: streamed windows at 720x1280 for 30, 300 and 1000 frames (peak GPU memory);
5. training-speed: ``benchmarks/training.py --device cuda`` (one training step of the released network per
   precision and layout, alternating processes; with ``--authors-repo``, the authors' trainer as reference).

Every section runs even when another fails; the report is Markdown.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
import traceback

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import memdeblur  # noqa: F401,E402,I001  (first: makes basicsr importable, registers the archs)
from basicsr.archs import build_network  # noqa: E402

from memdeblur.networks.checkpoint import load_pretrained, read_checkpoint  # noqa: E402


def correctness(fixtures, lines):
    vectors = read_checkpoint(osp.join(fixtures, 'official_memdeblur', 'io.pt'), 'Test vectors')
    net = build_network({'type': 'MemDeblurNet', **vectors['config']})
    load_pretrained(net, osp.join(fixtures, 'official_memdeblur', 'memdeblur_official_format.pth.tar')).eval()
    inputs = vectors['input']
    with torch.no_grad():
        cuda64 = net.double().cuda()(inputs.cuda(), return_scales=True)
        diffs64 = [(o.cpu() - r).abs().max().item() for o, r in zip(cuda64, vectors['outputs_eval'])]
        cuda32 = net.float().cuda()(inputs.float().cuda()).cpu()
        cpu32 = net.float().cpu()(inputs.float())
    lines += ['## Correctness (released network, authors\' test vectors, eval)', '',
              '- float64 CUDA vs the authors\' float64 outputs, per scale: '
              + ', '.join(f'{d:.2e}' for d in diffs64),
              f'- float32 CUDA vs float32 CPU (finest output): max |diff| {(cuda32 - cpu32).abs().max().item():.2e}, '
              f'mean {(cuda32 - cpu32).abs().mean().item():.2e}', '']


def training(lines, num_gpu=1):
    from memdeblur.data.synthetic import write_synthetic_gopro
    with tempfile.TemporaryDirectory() as root:
        data = osp.join(root, 'synthetic')
        write_synthetic_gopro(data, {'train': 2, 'test': 1}, num_frames=12, height=128, width=192, seed=3,
                              progress=False)
        overrides = [
            f'num_gpu={num_gpu}', 'train:total_iter=30', 'train:ema_decay=0.9', 'val:val_freq=30',
            'logger:print_freq=10',
            'logger:save_checkpoint_freq=30', f'datasets:train:dataroot={data}/train',
            f'datasets:val:dataroot={data}/test', 'datasets:train:num_worker_per_gpu=2'
        ]
        command = [sys.executable, '-m', 'memdeblur.pipeline_in_folder', 'train', root, '-opt',
                   osp.join(REPO_ROOT, 'options', 'train_memdeblur_synthetic.yml'), '--force_yml', *overrides]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=root, capture_output=True, text=True,
                                env={**os.environ, 'PYTHONPATH': REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH',
                                                                                                         '')})
        seconds = time.perf_counter() - start
        log = result.stdout + result.stderr
        losses = [line.split('l_pix: ')[1].split()[0] for line in log.splitlines() if 'l_pix: ' in line]
        validation = [line.strip() for line in log.splitlines() if '# psnr:' in line]
        saved = sorted(os.listdir(osp.join(root, 'experiments', 'memdeblur_synthetic', 'models'))) \
            if result.returncode == 0 else []
        lines += ['## Training on CUDA (synthetic recipe, 30 iterations, EMA, BasicSR train_pipeline)', '',
                  f'- exit code {result.returncode} in {seconds:.1f} s; l_pix at iterations 10/20/30: {losses}',
                  f'- validation: {validation}', f'- checkpoints: {saved}', '']
        if result.returncode != 0:
            lines += ['```', log[-3000:], '```', '']


def timed(restore, clip, runs):
    """(ms per frame, peak GPU MiB, output) of ``restore`` on a (T, 3, H, W) clip."""
    restore(clip)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(runs):
        out = restore(clip)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / runs
    return 1000 * seconds / clip.shape[0], torch.cuda.max_memory_allocated() / 2**20, out


def psnr(a, b):
    mse = ((a.clamp(0, 1) - b.clamp(0, 1))**2).mean().item()
    return float('inf') if mse == 0 else 10 * torch.log10(torch.tensor(1 / mse)).item()


def released_net(fixtures):
    net = build_network({'type': 'MemDeblurNet'})
    return load_pretrained(net, osp.join(fixtures, 'official_memdeblur', 'memdeblur_official_format.pth.tar'))


def speed(fixtures, lines):
    from memdeblur.runtime.backends import open_model
    net = released_net(fixtures)
    lines += ['## Speed (released configuration, eval; ratios within this run)', '',
              '| size | frames | mode | ms/frame | speed-up vs plain float32 | peak GPU MiB | PSNR vs plain (dB) |',
              '|---|---|---|---|---|---|---|']
    modes = [('plain float32', dict(fast=False)), ('fast float32', {}), ('fast float16', dict(precision='float16')),
             ('fast bfloat16', dict(precision='bfloat16'))]
    for (h, w), t, runs in (((256, 256), 20, 3), ((720, 1280), 10, 2)):
        torch.manual_seed(0)
        clip = torch.rand(t, 3, h, w)
        base_ms = reference = None
        for label, options in modes:
            ms, mem, out = timed(open_model(net, device='cuda', **options).restore_clip, clip, runs)
            base_ms, reference = base_ms or ms, reference if reference is not None else out
            quality = '-' if label.startswith('plain') else f'{psnr(out, reference):.1f}'
            lines.append(f'| {h}x{w} | {t} | {label} | {ms:.2f} | {base_ms / ms:.2f} | {mem:.0f} | {quality} |')
    lines.append('')


def video_memory(fixtures, lines):
    """Streamed windows at 720x1280, restored as tools/deblur_video.py does: peak GPU memory against length."""
    from memdeblur.runtime.restorer import Restorer
    restorer = Restorer(released_net(fixtures), 'cuda', 'float16', window=30, overlap=6, tile=0)
    lines += ['## Bounded memory at 720x1280 (the video tool\'s windows of 30, overlap 6, fast float16)', '',
              '| frames | peak GPU MiB | ms/frame |', '|---|---|---|']
    for length in (30, 300, 1000):
        torch.cuda.reset_peak_memory_stats()
        frame = torch.randint(0, 256, (3, 720, 1280), dtype=torch.uint8)
        start = time.perf_counter()
        count = sum(1 for _ in restorer.restore(frame for _ in range(length)))
        torch.cuda.synchronize()
        ms = 1000 * (time.perf_counter() - start) / length
        lines.append(f'| {count} | {torch.cuda.max_memory_allocated() / 2**20:.0f} | {ms:.1f} |')
    lines.append('')


def training_speed(authors_repo, lines):
    """The training-step benchmark on the GPU, its report included."""
    with tempfile.TemporaryDirectory() as root:
        out = osp.join(root, 'training_cuda.md')
        command = [sys.executable, osp.join(REPO_ROOT, 'benchmarks', 'training.py'), '--device', 'cuda', '--steps', '5',
                   '--passes', '2', '--out', out] + (['--authors-repo', authors_repo] if authors_repo else [])
        subprocess.run(command, check=True, cwd=REPO_ROOT)
        with open(out) as f:
            lines += ['#' + f.read(), '']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--fixtures', default=osp.join(REPO_ROOT, '..', 'shared', 'fixtures'),
                        help='folder holding official_memdeblur/ (default: ../shared/fixtures)')
    parser.add_argument('--out', default='gpu_check.md', help='Markdown report (default: gpu_check.md)')
    parser.add_argument('--authors-repo', help="a checkout of the authors' repository, for training-speed")
    sections = ['correctness', 'training', 'speed', 'memory', 'training-speed']
    parser.add_argument('--sections', nargs='+', default=sections, choices=sections, help='what to run (default: all)')
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit('error: no CUDA GPU visible; this check is for GPU machines.')
    lines = [f'# GPU check: {torch.cuda.get_device_name()}, torch {torch.__version__}', '']
    sections = {'correctness': lambda: correctness(args.fixtures, lines), 'training': lambda: training(lines),
                'speed': lambda: speed(args.fixtures, lines), 'memory': lambda: video_memory(args.fixtures, lines),
                'training-speed': lambda: training_speed(args.authors_repo, lines)}
    for name in args.sections:
        try:
            sections[name]()
        except Exception:  # report and go on: one broken section must not hide the others
            lines += ['```', traceback.format_exc(), '```', '']
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
