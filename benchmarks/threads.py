"""Speed on a busy and on a quiet machine: the default thread count against one thread and against all usable CPUs.

    python benchmarks/threads.py                  # both machines' states, both jobs
    python benchmarks/threads.py --steps 12 --frames 24

Two jobs, each in a process of its own per thread setting (a process setting: ``OMP_NUM_THREADS``):

* ``training``: training steps of ``options/train_memdeblur_synthetic.yml`` as ``tools/demo.py`` trains it on a CPU
  with BF16 (``train.precision: bfloat16``, ``train.channels_last: true``; float32 elsewhere), BasicSR's
  ``build_model`` and ``optimize_parameters`` on a seeded batch of the options' crop; the mean seconds per step
  after the first (trials of other counts included: what the run takes);
* ``video``: ``tools/deblur_video.py`` on a clip of ``--frames`` saturated, moving frames with the shipped synthetic
  model; the seconds its ``--summary`` reports.

Thread settings: ``default`` (nothing set: memdeblur chooses and adapts, ``memdeblur.utils.threads``), ``one``
(``OMP_NUM_THREADS=1``) and ``all`` (``OMP_NUM_THREADS`` = the usable CPUs). Machine states: ``quiet``, and
``busy``: one process per usable CPU spinning in a loop, started ``--settle`` seconds before the first job (the
load average a run sees at its start is a minute's), as during a test run beside a benchmark. The settings
alternate over ``--passes`` and a setting's figure is its best pass.

Then how far outputs move with the thread count (``rounding``): the Restorer at one and at all threads, windowed
and exact. Writes Markdown to ``--out`` (default benchmarks/results/threads_cpu.md) and the same as JSON beside it.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

SETTINGS = ('default', 'one', 'all')


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--states', nargs='+', choices=('quiet', 'busy'), default=['quiet', 'busy'])
    parser.add_argument('--jobs', nargs='+', choices=('training', 'video'), default=['training', 'video'])
    parser.add_argument('--steps', type=int, default=20, help='training steps per process, after the first')
    parser.add_argument('--frames', type=int, default=64, help='frames of the video clip')
    parser.add_argument('--passes', type=int, default=1, help='processes per setting, alternating')
    parser.add_argument('--settle', type=float, default=60, help='seconds the busy processes run before the jobs')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'threads_cpu.md'))
    parser.add_argument('--child', choices=('training', 'rounding'), help=argparse.SUPPRESS)
    parser.add_argument('--clip', help=argparse.SUPPRESS)
    return parser


def training_child(steps):
    """Run in a child: ``steps`` + 1 training steps; prints JSON with each step's seconds and the threads used."""
    import memdeblur  # noqa: F401,I001  (first: closes BasicSR's gaps)
    import torch
    from basicsr.models import build_model

    from memdeblur.run_options import in_process_training_options, read_options
    from memdeblur.utils.precision import cpu_has_native_bfloat16
    from memdeblur.utils.threads import process_governor

    overrides = ['train:precision=bfloat16', 'train:channels_last=true'] if cpu_has_native_bfloat16() else []
    opt = read_options(osp.join(REPO_ROOT, 'options', 'train_memdeblur_synthetic.yml'), overrides)
    with tempfile.TemporaryDirectory() as root:
        model = build_model(in_process_training_options(opt, root))
        data = opt['datasets']['train']
        generator = torch.Generator().manual_seed(0)
        shape = (data['batch_size_per_gpu'], data['num_frame'], 3, data['gt_size'], data['gt_size'])
        times = []
        for _ in range(steps + 1):
            lq, gt = torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)
            model.feed_data({'lq': lq, 'gt': gt})
            start = time.perf_counter()
            model.optimize_parameters(len(times) + 1)
            times.append(time.perf_counter() - start)
    governor = process_governor()
    print(json.dumps({'seconds': times[1:], 'threads': governor.threads, 'changes': governor.changes}))


def rounding(clip_path, cpus):
    """How far outputs move with the thread count: the shipped synthetic model restoring the clip through the
    ``Restorer`` at one thread and at ``cpus`` threads, windowed and exact, float32 frames (largest difference) and
    8-bit frames (largest difference in levels)."""
    import numpy as np
    import torch

    import memdeblur  # noqa: F401
    from memdeblur.runtime.restorer import Restorer
    from memdeblur.media.video_files import read_video_frames
    from memdeblur.utils.threads import process_governor

    frames = [frame for frame, _ in read_video_frames(clip_path)]
    tensors = [torch.from_numpy(frame).permute(2, 0, 1).float() / 255 for frame in frames]
    options = osp.join(REPO_ROOT, 'options', 'test_memdeblur_synthetic_pretrained.yml')
    rows = []
    for mode, settings in (('windows', {}), ('exact', {'exact': True})):
        restorer = Restorer.from_options(options, **settings)
        results = {}
        for threads in (1, cpus):
            process_governor(threads)
            results[threads] = (list(restorer.restore(tensors)), list(restorer.restore(frames)))
        (floats_one, levels_one), (floats_all, levels_all) = results[1], results[cpus]
        rows.append({'mode': mode, 'max_float_difference': max((a - b).abs().max().item()
                                                               for a, b in zip(floats_one, floats_all)),
                     'max_level_difference': int(max(np.abs(a.astype(int) - b.astype(int)).max()
                                                     for a, b in zip(levels_one, levels_all)))})
    return rows


def make_clip(path, frames):
    """A clip of saturated blocks moving over ``frames`` frames (real edges for the network to restore)."""
    import av
    import numpy as np
    rng = np.random.default_rng(0)
    height, width = 180, 320
    blocks = [(rng.integers(0, height - 40), rng.integers(0, width - 60), rng.choice([0, 255], 3)) for _ in range(12)]
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        for index in range(frames):
            frame = np.full((height, width, 3), 40, np.uint8)
            for top, left, colour in blocks:
                frame[top:top + 40, (left + 3 * index) % (width - 60):(left + 3 * index) % (width - 60) + 60] = colour
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())


def environment(setting, cpus):
    env = {key: value for key, value in os.environ.items() if key not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    if setting != 'default':
        env['OMP_NUM_THREADS'] = '1' if setting == 'one' else str(cpus)
    return env


def run_job(job, setting, args, workdir, cpus):
    """(seconds per step or per clip, threads at the end, thread changes) of one process."""
    env = environment(setting, cpus)
    if job == 'training':
        output = subprocess.run([sys.executable, __file__, '--child', 'training', '--steps', str(args.steps)],
                                check=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        seconds = sum(result['seconds']) / len(result['seconds'])
        return seconds, result['threads'], result['changes']
    out, summary = osp.join(workdir, f'out_{setting}'), osp.join(workdir, f'summary_{setting}.json')
    subprocess.run([sys.executable, osp.join('tools', 'deblur_video.py'), osp.join(workdir, 'clip.mp4'), '-o', out,
                    '--opt', osp.join('options', 'test_memdeblur_synthetic_pretrained.yml'), '--format', 'png',
                    '--summary', summary, '--force'], check=True, cwd=REPO_ROOT, env=env, capture_output=True)
    with open(summary) as f:
        sequence = json.load(f)['sequences'][0]
    return sequence['seconds'], sequence.get('threads'), sequence.get('thread_changes')


def busy_processes(count):
    return [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(count)]


def measure(args, cpus, workdir):
    results = []
    for state in args.states:
        spinners = busy_processes(cpus) if state == 'busy' else []
        try:
            if spinners:
                time.sleep(args.settle)
            for job in args.jobs:
                best = {}
                for index in range(args.passes):
                    order = SETTINGS if index % 2 == 0 else SETTINGS[::-1]
                    for setting in order:
                        load = os.getloadavg()[0]
                        seconds, threads, changes = run_job(job, setting, args, workdir, cpus)
                        print(f'{state} {job} {setting}: {seconds:.3f} s (threads at the end {threads}, changes '
                              f'{changes}, load before {load:.1f})', flush=True)
                        if setting not in best or seconds < best[setting]['seconds']:
                            best[setting] = {'seconds': seconds, 'threads': threads, 'changes': changes,
                                             'load': load}
                results.append({'state': state, 'job': job, **{s: best[s] for s in SETTINGS}})
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
    return results


def table(results, args, cpus):
    unit = {'training': 's/step', 'video': f's/clip ({args.frames} frames, 180x320)'}
    lines = ['| machine | job | default | one thread | all threads | default / one | default / best of one and all |'
             ' default: threads at the end |', '|---|---|---|---|---|---|---|---|']
    for row in results:
        default, one, every = (row[s]['seconds'] for s in SETTINGS)
        lines.append(f'| {row["state"]} | {row["job"]} ({unit[row["job"]]}) | {default:.3f} | {one:.3f} | '
                     f'{every:.3f} | {default / one:.2f} | {default / min(one, every):.2f} | '
                     f'{row["default"]["threads"]} |')
    return lines


def main():
    args = build_parser().parse_args()
    if args.child == 'training':
        training_child(args.steps)
        return
    if args.child == 'rounding':
        from memdeblur.utils.threads import usable_cpus
        print(json.dumps(rounding(args.clip, usable_cpus())))
        return
    from memdeblur.utils.threads import usable_cpus
    cpus = usable_cpus()
    with tempfile.TemporaryDirectory() as workdir:
        make_clip(osp.join(workdir, 'clip.mp4'), args.frames)
        differences = json.loads(subprocess.run(
            [sys.executable, __file__, '--child', 'rounding', '--clip', osp.join(workdir, 'clip.mp4')], check=True,
            cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        results = measure(args, cpus, workdir)
    command = 'python benchmarks/threads.py ' + ' '.join(sys.argv[1:])
    head = [f'# Threads on a busy and a quiet machine ({datetime.date.today()})', '',
            f'`{command.strip()}` on {platform.processor() or platform.machine()}, {cpus} usable CPUs; busy: one '
            f'spinning process per CPU, started {args.settle:.0f} s before. Training: mean s/step of {args.steps} '
            'steps after the first; video: the tool\'s seconds for the clip. Best of '
            f'{args.passes} pass(es), settings alternating.', '']
    differences_lines = ['', f'Outputs at one thread against {cpus} (the shipped synthetic model, the clip through '
                         'the Restorer, float32 and 8-bit frames):', '',
                         '| restoration | largest float32 difference | largest 8-bit difference (levels) |',
                         '|---|---|---|'] + [f'| {row["mode"]} | {row["max_float_difference"]:.2e} | '
                                             f'{row["max_level_difference"]} |' for row in differences]
    text = '\n'.join(head + table(results, args, cpus) + differences_lines) + '\n'
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text)
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump({'speed': results, 'rounding': differences}, f, indent=1)
    print(text)


if __name__ == '__main__':
    main()
