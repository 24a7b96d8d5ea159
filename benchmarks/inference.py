"""Inference speed and memory of MemDeblur: plain vs fast path vs bfloat16, as ratios within one run.

    python benchmarks/inference.py                         # 256x256, released network, CPU
    python benchmarks/inference.py --sizes 256x256 540x960 --frames 6 --lengths 10 30 100
    python benchmarks/inference.py --device cuda --precisions float32 float16 bfloat16

Measures, on a quiet machine:
1. the machine's 3x3 64->64 convolution throughput (channels-last; float32 and bfloat16), the
   ceiling the network's own throughput is compared with;
2. ms/frame of the released network per frame size: plain (the network as it is), fast float32
   (BatchNorm folded, channels-last, in-place residuals, inference mode) and fast reduced
   precision, with achieved GMAC/s (authors' convention) and the speed-up over plain. On a CPU
   the fast path's tools also keep freed memory in the process (``memdeblur.utils.allocator``), a
   setting of the whole process: each size is timed in child processes, one with glibc's default
   malloc (plain) and one with the retained heap (every mode), run alternately ``--passes`` times;
   within a child the modes run in turn over ``--rounds`` rounds, and each cell keeps its fastest;
3. peak memory against sequence length: whole-sequence processing vs streamed windows restored
   as tools/deblur_video.py does (``restore_stream``, the PyTorch backend's ``window_function``, retained heap), each
   length in a fresh process.
Writes Markdown to --out (default benchmarks/results/inference_<device>.md).

With ``--backends`` (CPU), instead: the released network side by side with the authors' code and the exported
backends, all with the same weights (``--checkpoint``, the authors' format) on the same seeded clip of ``--frames``
frames per size:

    python benchmarks/inference.py --backends --authors-repo ../MemDeblur --sizes 256x256 540x960 720x1280 --frames 4

* ``authors``: their model (``model/model.py`` of a checkout, ``--authors-repo``) built from their
  config/memdeblur_gopro_ds.yml, loaded from the checkpoint as their train/test.py loads it, eval mode,
  ``torch.no_grad``, float32, called as their test code calls it: ``model([frames - 0.5])[-1] + 0.5``;
* ours through ``memdeblur.runtime.restorer.Restorer`` (one window of the whole clip, no tiles): the plain
  network, the fast path in float32 and in bfloat16 (CPUs with BF16), and the model exported by ``export_onnx``
  for that clip (once per size, untimed; sides rounded up to its multiple of 16, e.g. 540x960 is exported at
  544x960 and the frames padded to it) in ONNX Runtime (float32) and OpenVINO (float32, bfloat16).

Each process family (the authors' process; ours plain with glibc's malloc; ours fast with the retained heap; ONNX
Runtime; OpenVINO) runs in processes of its own, alternately ``--passes`` times, each running its modes in turn
over ``--rounds`` rounds after a warm-up call; a cell keeps its fastest. Each output is compared with the authors'
(clamped to [0, 1]). The targets of issue 28 are checked (an exported backend at least as fast as our fast float32
at every size; at 720x1280 at least 2.0x the authors' code in float32 and 3.5x in reduced precision); where one is
missed, the exported backends are profiled at the largest size (OpenVINO's per-layer counters, ONNX Runtime's
profiler), summed by operation type, with the convolutions' throughput against the convolution ceiling.
Writes Markdown to --out (default benchmarks/results/inference_backends_<device>.md).
"""
import datetime
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import memdeblur  # noqa: F401,E402,I001
from memdeblur.runtime.backends.pytorch_backend import PyTorchModel  # noqa: E402
from memdeblur.archs.memdeblur_arch import MemDeblurNet  # noqa: E402
from memdeblur.utils.allocator import retain_freed_memory  # noqa: E402
from memdeblur.cli.command_line import frame_size, tool_parser  # noqa: E402
from memdeblur.evaluation.complexity import measure_complexity  # noqa: E402
from memdeblur.evaluation.results_table import write_lines  # noqa: E402
from memdeblur.utils.timing import timed  # noqa: E402

MEMORY_CHILD = """
import sys, torch
sys.path.insert(0, {root!r})
import memdeblur
from memdeblur.runtime.backends import open_model
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.peak_memory import peak_rss_mib
from memdeblur.runtime.windows import restore_stream
retain_freed_memory()
length, size, mode = {length}, {size}, {mode!r}
frames = (torch.randint(0, 256, (3, *size), dtype=torch.uint8) for _ in range(length))
if mode == 'whole':
    open_model(MemDeblurNet()).restore_clip(torch.stack(list(frames)).float() / 255)
else:  # as tools/deblur_video.py
    restore = open_model(MemDeblurNet()).window_function(tile=0, tile_overlap=0)
    for _ in restore_stream(restore, frames, window=10, overlap=2):
        pass
print('PEAK', peak_rss_mib())
"""
CHILD = """
import json, sys
sys.path[:0] = [{root!r}, {here!r}]
from inference import {function}
print('RESULT', json.dumps({function}(**{kwargs!r})))
"""
OFFICIAL_FORMAT_WEIGHTS = osp.normpath(osp.join(REPO_ROOT, '..', 'shared', 'fixtures', 'official_memdeblur',
                                                'memdeblur_official_format.pth.tar'))
# The timed processes: (malloc setting, modes); a mode is (label, fast, precision).
PLAIN = ('plain float32', False, 'float32')


def parse_args():
    parser = tool_parser(__doc__)
    parser.add_argument('--device', default='cpu', help='cpu or cuda (default: cpu)')
    parser.add_argument('--sizes', nargs='+', type=frame_size, default=[(256, 256)], metavar='HxW',
                        help='frame sizes (default: 256x256)')
    parser.add_argument('--frames', type=int, default=8, help='frames per timed sequence (default: 8)')
    parser.add_argument('--rounds', type=int, default=3,
                        help='timed rounds per process; each mode\'s fastest round counts (default: 3)')
    parser.add_argument('--passes', type=int, default=2,
                        help='times each timing process runs, alternating malloc settings (default: 2)')
    parser.add_argument('--precisions', nargs='+', default=['bfloat16'],
                        help='reduced precisions to time besides float32 (default: bfloat16)')
    parser.add_argument('--lengths', nargs='*', type=int, default=[10, 30],
                        help='sequence lengths of the memory measurement at 128x128 (default: 10 30; none: skip)')
    parser.add_argument('--backends', action='store_true',
                        help="instead: the authors' code, our PyTorch paths and the exported backends side by side")
    parser.add_argument('--authors-repo', help="with --backends: a checkout of the authors' MemDeblur repository")
    parser.add_argument('--checkpoint', default=OFFICIAL_FORMAT_WEIGHTS,
                        help="with --backends: the weights of both sides, in the authors' format (default: the "
                        'random weights of ../shared/fixtures/official_memdeblur)')
    parser.add_argument('--profile', choices=['auto', 'always', 'never'], default='auto',
                        help='with --backends: profile the exported backends at the largest size (auto: when a '
                        'target is missed)')
    parser.add_argument('--out', help='Markdown report (default: benchmarks/results/inference_<device>.md, '
                        'inference_backends_cpu.md with --backends)')
    return parser.parse_args()


def fastest_seconds(fns, device, rounds):
    """Fastest time of each of ``fns`` over ``rounds`` rounds that call them in turn (after one warm-up call each).

    Interleaving makes a drift in the machine's speed (other tenants, clock changes) hit every
    mode alike, and the fastest call is the one least disturbed, so the ratios are comparable.
    """
    for fn in fns:
        fn()
    best = [float('inf')] * len(fns)
    for _ in range(rounds):
        for index, fn in enumerate(fns):
            with timed(device) as clock:
                fn()
            best[index] = min(best[index], clock.seconds)
    return best


def conv_throughput(device, dtype):
    """GMAC/s of a 3x3 64->64 convolution on a (4, 64, 256, 256) channels-last input."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    x = torch.rand(4, 64, 256, 256, device=device).to(memory_format=torch.channels_last)
    macs = 4 * 64 * 64 * 9 * 256 * 256
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        return macs / fastest_seconds([lambda: conv(x)], device, rounds=5)[0] / 1e9


def time_modes(device, size, frames, rounds, modes, retained):
    """Seconds per clip of each mode in this process (fastest of ``rounds`` rounds that run them in turn) and
    the PSNR of its output against the first mode's; ``retained``: keep freed memory first (a process setting).
    The network's weights and the clip come from fixed seeds, so every process times the same work."""
    if retained:
        retain_freed_memory()
    device = torch.device(device)
    torch.manual_seed(0)
    net = MemDeblurNet().eval()
    clip = torch.rand(frames, 3, *size)
    restorers = [PyTorchModel(net, device, precision, fast=fast).restore_clip for _, fast, precision in modes]
    times = fastest_seconds([lambda restore=restore: restore(clip) for restore in restorers], device, rounds)
    reference = restorers[0](clip)
    results = {}
    for (label, _, _), restore, seconds in zip(modes, restorers, times):
        mse = ((restore(clip) - reference)**2).mean().item()
        results[label] = (seconds, float('inf') if mse == 0 else -10 * math.log10(mse))
    return results


def timing_plan(device, precisions):
    """(malloc label, retained, modes) of the timing processes: on a CPU, plain under glibc's default malloc in
    one, every mode with the retained heap in the other (the fast path's setting); on a GPU one process."""
    modes = [PLAIN, ('fast float32', True, 'float32')] + [(f'fast {p}', True, p) for p in precisions]
    if device.type != 'cpu':
        return [('-', False, modes)]
    return [('glibc default', False, [PLAIN]), ('retained', True, modes)]


def timed_cells(args, device, size):
    """{(malloc label, mode label): (seconds per clip, PSNR vs plain)}, the fastest over ``args.passes``
    alternating runs of ``timing_plan``'s processes."""
    cells = {}
    for _ in range(args.passes):
        for malloc, retained, modes in timing_plan(device, args.precisions):
            kwargs = dict(device=str(device), size=tuple(size), frames=args.frames, rounds=args.rounds, modes=modes,
                          retained=retained)
            for label, (seconds, psnr) in run_child('time_modes', kwargs).items():
                best = cells.get((malloc, label))
                cells[(malloc, label)] = (seconds, psnr) if best is None or seconds < best[0] else best
    return cells


def run_child(function, kwargs):
    """What ``function(**kwargs)`` of this file returns when run in a fresh Python process (through JSON)."""
    code = CHILD.format(root=REPO_ROOT, here=osp.dirname(osp.abspath(__file__)), function=function, kwargs=kwargs)
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f'error: {function}({kwargs}) failed in its process:\n{result.stderr[-4000:]}')
    return json.loads(result.stdout.split('RESULT')[-1])


# ---------------------------------------------------------------- --backends: the authors' code and exported models

AUTHORS = 'authors (their code)'
OURS_FAST = 'ours fast float32'
EXPORTED_FLOAT32 = ('ONNX Runtime float32', 'OpenVINO float32')
CONV_TYPES = {'Convolution', 'GroupConvolution', 'ConvolutionBackpropData', 'Conv', 'FusedConv', 'ConvTranspose'}
TARGET_SIZE, TARGET_FLOAT32, TARGET_REDUCED = (720, 1280), 2.0, 3.5  # issue 28's speed targets


def backend_families(bfloat16):
    """{process family: modes}: each family runs in processes of its own (the authors' process and ONNX Runtime's
    and OpenVINO's as a user runs them; ours plain with glibc's malloc, ours fast with the retained heap its
    ``Restorer`` sets). A mode is (label, how it runs, precision); bfloat16 modes only on CPUs with BF16."""
    reduced = ['bfloat16'] if bfloat16 else []
    return {
        'authors': [(AUTHORS, 'authors', 'float32')],
        'ours plain': [('ours plain float32', 'plain', 'float32')],
        'ours fast': [(OURS_FAST, 'pytorch', 'float32')] + [(f'ours fast {p}', 'pytorch', p) for p in reduced],
        'onnxruntime': [(EXPORTED_FLOAT32[0], 'onnxruntime', 'float32')],
        'openvino': [(EXPORTED_FLOAT32[1], 'openvino', 'float32')] + [(f'OpenVINO {p}', 'openvino', p)
                                                                      for p in reduced],
    }


def seeded_clip(frames, size):
    """The clip every process restores: (1, T, 3, H, W) in [0, 1], from a fixed seed."""
    return torch.rand(1, frames, 3, *size, generator=torch.Generator().manual_seed(0))


def authors_model(repo, checkpoint):
    """The authors' model from a checkout of their repository: built from their config/memdeblur_gopro_ds.yml and
    loaded from ``checkpoint`` (their format) as their train/test.py loads it, in eval mode."""
    import types

    import yaml
    from authors_code import authors_model_class
    Model = authors_model_class(repo)
    with open(osp.join(repo, 'config', 'memdeblur_gopro_ds.yml')) as f:
        net = Model(types.SimpleNamespace(**yaml.safe_load(f)))
    net.load_state_dict(torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict'])
    return net.eval()


def clip_function(kind, precision, checkpoint, onnx, authors_repo, frames):
    """A function restoring a (1, T, 3, H, W) clip to its (1, T, 3, H, W) output: the authors' model called as
    their test code calls it (frames centred, the finest scale's output), or ours through a ``Restorer`` (one
    window of the whole clip, no tiles)."""
    if kind == 'authors':
        net = authors_model(authors_repo, checkpoint)

        def run(clip):
            with torch.no_grad():
                return net([clip - 0.5])[-1] + 0.5
        return run
    from memdeblur.runtime.restorer import Restorer
    from memdeblur.networks.checkpoint import load_pretrained
    if kind in ('onnxruntime', 'openvino'):
        restorer = Restorer(onnx, 'cpu', precision, window=frames, overlap=0, tile=0, backend=kind)
    else:
        net = load_pretrained(MemDeblurNet(), checkpoint).eval()
        restorer = Restorer(net, 'cpu', precision, fast=kind == 'pytorch', window=frames, overlap=0, tile=0)
    return lambda clip: torch.stack(list(restorer.restore(clip[0]))).unsqueeze(0)


def time_backends(modes, size, frames, rounds, checkpoint, onnx, authors_repo, save):
    """Seconds per clip of each of ``modes`` (``backend_families``) in this process, the fastest of ``rounds``
    rounds running them in turn after a warm-up call each; with ``save`` (a folder), each mode's output (clamped
    to [0, 1]) is written there as ``<label>.npy``."""
    import numpy as np
    clip = seeded_clip(frames, size)
    functions = [clip_function(kind, precision, checkpoint, onnx, authors_repo, frames) for _, kind, precision in modes]
    outputs = {}
    times = fastest_seconds([lambda index=index, fn=fn: outputs.__setitem__(index, fn(clip))
                             for index, fn in enumerate(functions)], torch.device('cpu'), rounds)
    if save:
        for index, (label, _, _) in enumerate(modes):
            np.save(osp.join(save, f'{label}.npy'), outputs[index][0].float().clamp(0, 1).numpy())
    return {label: seconds for (label, _, _), seconds in zip(modes, times)}


def conv_macs(model):
    """Multiply-accumulates of the convolutions of an OpenVINO model with static shapes."""
    macs = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ('Convolution', 'GroupConvolution', 'ConvolutionBackpropData'):
            continue
        weights = list(op.get_input_shape(1))
        if kind == 'ConvolutionBackpropData':  # every input position scatters into Cout x kh x kw outputs
            macs += math.prod(op.get_input_shape(0)) * math.prod(weights[1:])
        else:  # every output position gathers Cin/groups x kh x kw inputs
            macs += math.prod(op.get_output_shape(0)) * math.prod(weights[2 if kind == 'GroupConvolution' else 1:])
    return macs


def profile_backends(size, frames, onnx, precisions):
    """Where an exported model's time goes at ``size`` (its traced size): one run after a warm-up in ONNX Runtime
    (its profiler) and in OpenVINO (per-layer performance counters), compiled as ``Restorer`` compiles it and, for a
    model of dynamic size, reshaped to the clip's static shape; seconds summed by operation type, and the
    convolutions' GMACs per clip."""
    import onnxruntime as ort
    import openvino as ov

    from memdeblur.runtime.backends.openvino_backend import OPENVINO_PRECISIONS
    clip = seeded_clip(frames, size).numpy()
    profiles = {}
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling, options.profile_file_prefix = True, osp.join(folder, 'onnxruntime')
        options.log_severity_level = 3
        session = ort.InferenceSession(onnx, options, providers=['CPUExecutionProvider'])
        for _ in range(2):
            session.run(None, {session.get_inputs()[0].name: clip})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    last = [e for e in events if e.get('cat') == 'Session' and e.get('name') == 'model_run'][-1]
    by_type = defaultdict(float)
    for event in events:
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time') and \
                last['ts'] <= event['ts'] <= last['ts'] + last['dur']:
            by_type[event['args']['op_name']] += event['dur'] / 1e6
    profiles['ONNX Runtime float32'] = {'seconds': last['dur'] / 1e6, 'by_type': by_type}
    core = ov.Core()
    static = core.read_model(onnx)
    static.reshape({static.input(0): ov.PartialShape(list(clip.shape))})
    dynamic = static.is_dynamic() or core.read_model(onnx).is_dynamic()
    for precision in precisions:
        for shape, model in [('', onnx)] + ([(', static shape', static)] if dynamic else []):
            compiled = core.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': OPENVINO_PRECISIONS[precision],
                                                         'PERF_COUNT': True})
            request = compiled.create_infer_request()
            request.infer({0: clip})
            start = time.perf_counter()
            request.infer({0: clip})
            seconds = time.perf_counter() - start
            by_type = defaultdict(float)
            for info in request.profiling_info:
                by_type[info.node_type] += info.real_time.total_seconds()
            profiles[f'OpenVINO {precision}{shape}'] = {'seconds': seconds, 'by_type': by_type}
    return {'conv_gmacs': conv_macs(static) / 1e9, 'profiles': profiles}


def psnr_and_max(output, reference):
    """(PSNR in dB for the range [0, 1], largest absolute difference) of two arrays."""
    difference = output.astype('float64') - reference
    mse = float((difference**2).mean())
    return (float('inf') if mse == 0 else -10 * math.log10(mse)), float(abs(difference).max())


def export_for(size, frames, checkpoint, folder):
    """Export the released network with the weights of ``checkpoint`` for clips of ``frames`` frames at ``size``
    rounded up to the export's size multiple into ``folder`` (run in a process of its own: the verification at
    720x1280 leaves gigabytes in the process's heap): (path, traced size, seconds, the export's progress lines)."""
    from memdeblur.export.onnx_export import export_onnx
    from memdeblur.networks.checkpoint import load_pretrained
    from memdeblur.networks.traits import network_traits
    from memdeblur.utils.padding import round_up
    net = load_pretrained(MemDeblurNet(), checkpoint).eval()
    multiple = network_traits(net).traced_size_multiple
    traced = tuple(round_up(side, multiple) for side in size)
    path = osp.join(folder, f'memdeblur_{frames}x{traced[0]}x{traced[1]}.onnx')
    started, progress = time.perf_counter(), []
    export_onnx(net, path, frames, traced, checkpoint=checkpoint, progress=progress.append)
    return path, traced, time.perf_counter() - started, progress


def backend_cells(args, families, size, onnx, folder):
    """{mode label: (seconds per clip, PSNR vs the authors, max abs difference vs the authors)} at ``size``, each
    the fastest over ``args.passes`` alternating runs of the families' processes."""
    import numpy as np
    fastest = {}
    for index in range(args.passes):
        for family, modes in families.items():
            kwargs = dict(modes=modes, size=tuple(size), frames=args.frames, rounds=args.rounds,
                          checkpoint=args.checkpoint, onnx=onnx, authors_repo=args.authors_repo,
                          save=folder if index == 0 else None)
            for label, seconds in run_child('time_backends', kwargs).items():
                fastest[label] = min(seconds, fastest.get(label, float('inf')))
                print(f'  pass {index + 1}/{args.passes} {label:24s} {1000 * seconds / args.frames:.1f} ms/frame',
                      flush=True)
    reference = np.load(osp.join(folder, f'{AUTHORS}.npy')).astype('float64')
    return {label: (seconds, *psnr_and_max(np.load(osp.join(folder, f'{label}.npy')), reference))
            for label, seconds in fastest.items()}


def target_lines(results):
    """Issue 28's speed targets checked against ``results`` ({size: cells}); (lines, whether all were reached).
    The speed-ups over the authors are checked at 720x1280, or at the largest size measured without it."""
    lines, reached = [], True
    for size, cells in results.items():
        label = min(EXPORTED_FLOAT32, key=lambda mode: cells[mode][0])
        ok = cells[label][0] <= cells[OURS_FAST][0]
        reached &= ok
        ratio = cells[OURS_FAST][0] / cells[label][0]
        lines.append(f'- {size[0]}x{size[1]}: fastest exported float32 ({label}) {ratio:.2f}x our fast float32: '
                     f'{"reached" if ok else "NOT reached"} (target: at least 1.00x).')
    size = TARGET_SIZE if TARGET_SIZE in results else max(results, key=lambda s: s[0] * s[1])
    cells = results[size]
    where = f'{size[0]}x{size[1]}' + ('' if size == TARGET_SIZE else ' (the targets are set at 720x1280, not '
                                      'measured in this run)')
    for name, target, modes in (('float32', TARGET_FLOAT32, [m for m in cells if m.endswith('float32')]),
                                ('reduced precision', TARGET_REDUCED, [m for m in cells if not m.endswith('float32')])):
        modes = [m for m in modes if m != AUTHORS]
        if not modes:
            lines.append(f'- {where}, {name}: no mode measured (this CPU has no BF16 instructions).')
            reached = False
            continue
        best = min(modes, key=lambda mode: cells[mode][0])
        speedup = cells[AUTHORS][0] / cells[best][0]
        reached &= speedup >= target
        lines.append(f'- {where}, {name}: fastest {best}, {speedup:.2f}x the authors\' code: '
                     f'{"reached" if speedup >= target else "NOT reached"} (target: at least {target:.1f}x).')
    return lines, reached


def profile_lines(profile, frames, authors_seconds, ceiling, top=8):
    """Markdown of ``profile_backends``'s result: per backend, seconds by operation type and the convolutions'
    throughput against the convolution ceiling."""
    gmacs = profile['conv_gmacs']
    lines = [f'Convolutions of the exported model: {gmacs:.0f} GMAC per clip ({gmacs / frames:.1f} per frame).', '']
    for label, measured in profile['profiles'].items():
        by_type, seconds = measured['by_type'], measured['seconds']
        counted = sum(by_type.values())
        conv = sum(v for k, v in by_type.items() if k in CONV_TYPES)
        limit = ceiling['bfloat16' if 'bfloat16' in label else 'float32']
        bound = gmacs / limit
        other = counted - conv
        lines += [f'**{label}**: {1000 * seconds / frames:.0f} ms/frame in the profiled run; its layers\' times add up '
                  f'to {counted:.2f} s per clip. Convolutions {conv:.2f} s ({100 * conv / counted:.0f}%): '
                  f'{gmacs / conv:.0f} GMAC/s, {100 * gmacs / conv / limit:.0f}% of the convolution ceiling '
                  f'({limit:.0f} GMAC/s); everything else {other:.2f} s ({100 * other / counted:.0f}%). '
                  f'Convolutions at the ceiling and nothing else: {1000 * bound / frames:.0f} ms/frame, '
                  f'{authors_seconds / bound:.2f}x the authors\' code.', '',
                  '| operation type | s per clip | share |', '|---|---|---|']
        ranked = sorted(by_type.items(), key=lambda item: -item[1])
        for kind, value in ranked[:top]:
            lines.append(f'| {kind} | {value:.3f} | {100 * value / counted:.1f}% |')
        rest = sum(value for _, value in ranked[top:])
        lines += [f'| {len(ranked) - top} other types | {rest:.3f} | {100 * rest / counted:.1f}% |'] if rest else []
        lines.append('')
    return lines


def backends_report(args):
    """The --backends run: Markdown lines."""
    from memdeblur.evaluation.complexity import measure_complexity
    from memdeblur.networks.checkpoint import load_pretrained
    from memdeblur.utils.precision import cpu_has_native_bfloat16
    from training import machine  # benchmarks/training.py, beside this file
    started = time.perf_counter()
    bfloat16 = cpu_has_native_bfloat16()
    families = backend_families(bfloat16)
    net = load_pretrained(MemDeblurNet(), args.checkpoint).eval()
    cpu = torch.device('cpu')
    precisions = {'float32': None, **({'bfloat16': torch.bfloat16} if bfloat16 else {})}
    ceiling = {name: conv_throughput(cpu, dtype) for name, dtype in precisions.items()}
    lines = ['# MemDeblur inference: the authors\' code, our PyTorch paths and the exported backends (cpu)', '',
             f'`python benchmarks/{osp.basename(__file__)} {" ".join(sys.argv[1:])}`', '',
             f'{datetime.date.today()}; {machine()}; ONNX Runtime {__import__("onnxruntime").__version__}, OpenVINO '
             f'{__import__("openvino").__version__}.', '',
             f'Released network, weights of `{osp.relpath(args.checkpoint, REPO_ROOT)}` on both sides, one seeded clip '
             f'of {args.frames} frames per size. Each time is the fastest of {args.passes} x {args.rounds} rounds '
             '(the process families run alternately, each running its modes in turn after a warm-up call), from '
             'one run of the benchmark; run it on a quiet machine (other work during the run slows some cells). '
             'Exported models: traced for the clip, sides rounded up to a multiple of 16 (frames padded to it and '
             'the output cropped back).' + ('' if bfloat16 else ' No BF16 instructions: no bfloat16 modes.'), '']
    table = ['| size | mode | ms/frame | vs authors | vs our fast float32 | GMAC/s achieved | of the conv ceiling | '
             'PSNR vs authors (dB) | max abs difference |', '|---|---|---|---|---|---|---|---|---|']
    results, exports = {}, {}
    with tempfile.TemporaryDirectory(prefix='memdeblur_backends_') as workdir:
        for size in args.sizes:
            name = f'{size[0]}x{size[1]}'
            print(f'{name}: exporting', flush=True)
            onnx, traced, seconds, progress = run_child('export_for', dict(
                size=tuple(size), frames=args.frames, checkpoint=args.checkpoint, folder=workdir))
            print('\n'.join(f'  export: {line}' for line in progress), flush=True)
            exports[size] = (tuple(traced), seconds, osp.getsize(onnx), onnx)
            folder = osp.join(workdir, name)
            os.makedirs(folder)
            results[size] = backend_cells(args, families, size, onnx, folder)
        # measured again after the timed processes, the fastest kept: other work at the start would lower it
        ceiling = {name: max(ceiling[name], conv_throughput(cpu, dtype)) for name, dtype in precisions.items()}
        for size, cells in results.items():
            gmacs = measure_complexity(net, *size, args.frames, exact=False).thop_gmacs
            for label, (seconds, psnr, largest) in cells.items():
                achieved = gmacs / seconds * args.frames
                limit = ceiling['float32' if label.endswith('float32') else 'bfloat16']
                difference = ('-', '-') if label == AUTHORS else (f'{psnr:.1f}', f'{largest:.2g}')
                table.append(f'| {size[0]}x{size[1]} | {label} | {1000 * seconds / args.frames:.1f} | '
                             f'{cells[AUTHORS][0] / seconds:.2f}x | {cells[OURS_FAST][0] / seconds:.2f}x | '
                             f'{achieved:.0f} | {100 * achieved / limit:.0f}% | {difference[0]} | {difference[1]} |')
        lines += ['3x3 64->64 convolution, channels-last (PyTorch), the fastest of a measurement before and one after '
                  'the timed processes: ' + ', '.join(f'{k} {v:.0f} GMAC/s' for k, v in ceiling.items()), '',
                  *table, '', 'Exports (not timed): ' + '; '.join(
                      f'{s[0]}x{s[1]}' + (f' at {t[0]}x{t[1]}' if t != s else '')
                      + f' {seconds:.0f} s, {nbytes / 1e6:.0f} MB' for s, (t, seconds, nbytes, _) in exports.items())
                  + '.', '', '## Targets (issue 28)', '']
        targets, reached = target_lines(results)
        lines += targets + ['']
        if args.profile == 'always' or (args.profile == 'auto' and not reached):
            size = max(results, key=lambda s: s[0] * s[1])
            traced, _, _, onnx = exports[size]
            print(f'{size[0]}x{size[1]}: profiling the exported backends', flush=True)
            profile = run_child('profile_backends', dict(size=traced, frames=args.frames, onnx=onnx,
                                                         precisions=list(ceiling)))
            lines += [f'## Where the time goes: exported backends at {size[0]}x{size[1]} (run at {traced[0]}x'
                      f'{traced[1]})', '', 'One profiled run after a warm-up, per backend, in one process; '
                      'OpenVINO as the Restorer compiles it and, for a model of dynamic size, reshaped to the clip\'s '
                      'static shape first. Seconds per clip by operation type (OpenVINO: its per-layer counters; '
                      'ONNX Runtime: its profiler\'s kernel times); convolution types: ' + ', '.join(sorted(CONV_TYPES))
                      + ' (with what is fused into them).', '']
            lines += profile_lines(profile, args.frames, results[size][AUTHORS][0], ceiling)
    lines.append(f'Wall time of the benchmark: {(time.perf_counter() - started) / 60:.1f} min.')
    return lines


def main():
    args = parse_args()
    if args.backends:
        if args.device != 'cpu' or not args.authors_repo:
            raise SystemExit('error: --backends runs on the CPU (--device cpu) and needs --authors-repo (a checkout '
                             "of the authors' MemDeblur repository)")
        lines = backends_report(args)
        out = args.out or osp.join(REPO_ROOT, 'benchmarks', 'results', 'inference_backends_cpu.md')
        write_lines(out, lines)
        print('\n'.join(lines))
        print(f'Wrote {out}')
        return
    device = torch.device(args.device)
    net = MemDeblurNet().eval()
    reduced = {'bfloat16': torch.bfloat16, 'float16': torch.float16}
    lines = [f'# MemDeblur inference benchmark ({device.type})', '',
             f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch '
             f'{torch.__version__}, {torch.get_num_threads()} threads'
             + (f', {torch.cuda.get_device_name()}' if device.type == 'cuda' else '') + '.',
             f'Command: `python benchmarks/{osp.basename(__file__)} {" ".join(sys.argv[1:])}`', '']
    ceiling = {'float32': conv_throughput(device, None)}
    for name in args.precisions:
        ceiling[name] = conv_throughput(device, reduced[name])
    lines += [f'Each time is the fastest of {args.passes} x {args.rounds} rounds: the timing processes (one per '
              'malloc setting) run alternately, each running its modes in turn.', '',
              '3x3 64->64 convolution, channels-last: ' + ', '.join(f'{k} {v:.0f} GMAC/s' for k, v in ceiling.items()),
              '', '| size | mode | malloc | ms/frame | speed-up vs plain | GMAC/s achieved | of the conv ceiling | '
              'PSNR vs plain (dB) |', '|---|---|---|---|---|---|---|---|']
    for size in args.sizes:
        gmacs = measure_complexity(net, *size, args.frames).thop_gmacs
        cells = timed_cells(args, device, size)
        baseline = next(iter(cells.values()))[0]  # plain, glibc's default malloc on a CPU
        for (malloc, label), (seconds, psnr) in cells.items():
            precision = label.split()[-1]
            achieved = gmacs / seconds * args.frames
            psnr = '-' if label == PLAIN[0] else f'{psnr:.1f}'
            lines.append(f'| {size[0]}x{size[1]} | {label} | {malloc} | {1000 * seconds / args.frames:.1f} | '
                         f'{baseline / seconds:.2f} | {achieved:.0f} | {100 * achieved / ceiling[precision]:.0f}% | '
                         f'{psnr} |')
            print(lines[-1], flush=True)
    if args.lengths:
        lines += ['', 'Peak resident memory (MiB) at 128x128, released network, float32, retained heap (as the tools '
                  'run), fresh process per cell:', '',
                  '| frames | whole sequence | windows of 10 (overlap 2) |', '|---|---|---|']
        for length in args.lengths:
            cells = []
            for mode in ('whole', 'windowed'):
                code = MEMORY_CHILD.format(root=REPO_ROOT, length=length, size=(128, 128), mode=mode)
                out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
                cells.append(float(out.split('PEAK')[-1]))
            lines.append(f'| {length} | {cells[0]:.0f} | {cells[1]:.0f} |')
            print(lines[-1], flush=True)
    out = args.out or osp.join(REPO_ROOT, 'benchmarks', 'results', f'inference_{device.type}.md')
    write_lines(out, lines)
    print(f'Wrote {out}')


if __name__ == '__main__':
    main()
