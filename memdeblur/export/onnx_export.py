"""ONNX export of a whole-clip network, verified against PyTorch before anything is written.

``export_onnx`` traces the fast inference copy of a network (``memdeblur.networks.rewrites.prepare_fast``:
BatchNorm folded, in-place residual blocks) with ``torch.onnx.export``'s TorchScript exporter (the dynamo exporter
stops at the networks' data-dependent input checks) for one clip of T frames: (1, T, 3, H, W) float32 in [0, 1]
in, (1, T - before - after, 3, H, W) out (``frame_margins``), as ``forward``. Then it runs the model in ONNX Runtime
(CPU) on a clip and compares with the original network in PyTorch (float32, eval mode); a model that differs by
more than its tolerance is refused and nothing is written.

What a trace keeps constant. The loops over frames and scales unroll, so T is fixed. Every value a network derives
from the frame size in Python is kept as it was at the traced size: padding amounts (MemDeblur pads each scale's
frame to a multiple of 4; traced at 64x96 it is off by 3.6e-4 at 68x100), and branches (MemDeblur's read-out of a
bank holding at most ``top_k`` positions is a full softmax, a top-k one beyond; the sparse read-out's chunks). The
network's ``network_traits`` say where a trace holds: at sides that are multiples of ``traced_size_multiple``, and,
when both traced sides are at least ``traced_min_side``, at every larger such side. So:

* traced at sides >= ``traced_min_side``: height and width are dynamic; the model runs at every multiple of
  ``size_multiple`` from its traced size (``min_size``) up, and the verification runs at the traced size and at one
  multiple more on each side;
* traced smaller: height and width are fixed to the traced size (``dynamic_size`` false); a consumer pads or tiles
  frames to exactly that size.

The sparse top-k read-out (``MemoryBank``'s ``sparse``) is off in the exported copy: it loops over chunks of
query positions whose bounds a trace keeps, and it only runs on key maps of ``SPARSE_MIN_POSITIONS`` positions
and more anyway; the dense top-k read-out in its place gives the same values (float rounding apart).

Everything a consumer needs travels in the model's metadata with the digests of the model and of that metadata
(``memdeblur.runtime.backends.export_file``: the format, and ``load_export``, which checks it whenever an export is
read).
"""
import copy
import io
import json
import time
import warnings

import torch

from memdeblur.utils.errors import DataError
from memdeblur.networks.rewrites import prepare_fast
from memdeblur.networks.traits import bare_network, network_traits
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.optional_imports import require
from memdeblur.utils.outputs import check_outputs, staged_outputs, write_bytes
from memdeblur.utils.padding import round_up
from memdeblur.runtime.backends.export_file import EXPORT_FORMAT, EXPORT_METADATA_KEY, INPUT_NAME, OUTPUT_NAME, \
    metadata_digest
from memdeblur.utils.digests import file_digest, sha256

OPSET = 17
VERIFY_SEED = 0


class ExportMismatch(DataError):
    """An exported model whose outputs in ONNX Runtime differ from the network's in PyTorch by more than allowed."""


def check_export_arguments(traits, frames, size):
    """Refuse what cannot be exported: window networks, too few frames, sizes at which the trace would not hold.

    Raises:
        OptionError: naming the argument and the rule.
    """
    if traits.restores_windows:
        raise OptionError(f'This network restores the centre frame of windows of {traits.window} frames; only '
                          'whole-clip networks ((1, T, 3, H, W) in and out) can be exported.')
    before, after = traits.frame_margins
    if frames < 1 + before + after:
        raise OptionError(f'frames {frames}: this network gives no output for its first {before} and last '
                          f'{after} frames; export at least {1 + before + after} frames.')
    multiple = traits.traced_size_multiple
    if any(side % multiple for side in size) or min(size) < max(traits.min_size, 1):
        raise OptionError(f'size {size[0]}x{size[1]}: a traced model of this network holds only at sides that are '
                          f'multiples of {multiple}' + (f' and at least {traits.min_size}' if traits.min_size else '')
                          + f' (no padding inside it); e.g. {round_up(size[0], multiple)}x'
                          f'{round_up(size[1], multiple)}.')


def export_copy(net):
    """The network as it is exported: ``prepare_fast``'s copy on the CPU in float32, without the sparse read-out
    (see the module docstring)."""
    fast = prepare_fast(net, 'cpu', channels_last=False).float()
    if hasattr(fast, 'sparse_readout'):
        fast.sparse_readout = False
    return fast


def verification_clip(frames, size):
    """The clip a model is verified on at ``size``: (1, T, 3, H, W) seeded random content in [0, 1]."""
    return torch.rand(1, frames, 3, *size, generator=torch.Generator().manual_seed(VERIFY_SEED))


def max_difference(session, original, clip):
    """Largest absolute difference between the model in ONNX Runtime and ``original`` (PyTorch) on ``clip``."""
    with torch.inference_mode():
        expected = original(clip)
    output = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: clip.numpy()})[0])
    if output.shape != expected.shape:
        return float('inf')
    return float((output - expected).abs().max())


def export_onnx(net, out_path, frames, size, network_options=None, checkpoint=None, tolerance=1e-4,
                overwrite=False, progress=print):
    """Export ``net`` to ONNX for clips of ``frames`` frames traced at ``size``, verified in ONNX Runtime.

    Args:
        net (nn.Module): A whole-clip network ((B, T, 3, H, W) in [0, 1] -> restored frames); not modified.
        out_path (str): The ``.onnx`` file; written whole or not at all (``memdeblur.utils.outputs``).
        frames (int): T, the frames of every clip the model takes.
        size (tuple[int, int]): (H, W) it is traced at: the smallest frames it takes.
        network_options (dict | None): The options it was built from (``network_g``), recorded; ``type`` dropped.
        checkpoint (str | None): The weights it holds, recorded with their SHA-256.
        tolerance (float): Largest absolute difference from PyTorch allowed.
        overwrite (bool): Replace an existing ``out_path`` (``--force``).
        progress (callable): Receives one line per step.

    Returns:
        dict: The metadata written into the model (``read_export_info``).

    Raises:
        OptionError: arguments the network cannot be exported with, or a missing optional package.
        ExportMismatch: the model differs from PyTorch by more than ``tolerance``; nothing is written.
    """
    onnx = require('onnx', 'onnx', 'export a model to ONNX')
    ort = require('onnxruntime', 'onnx', 'verify an export')
    started = time.time()
    traits = network_traits(net)
    size = tuple(size)
    check_export_arguments(traits, frames, size)
    inputs = [checkpoint] if checkpoint else []
    check_outputs(files=[out_path], overwrite=overwrite, inputs=inputs)
    multiple = traits.traced_size_multiple
    dynamic = min(size) >= traits.traced_min_side
    name = type(bare_network(net)).__name__
    shape = f'{frames} frames of {size[0]}x{size[1]}'
    progress(f'tracing {name} for {shape} ' + (
        f'(height and width: any multiples of {multiple} from {size[0]}x{size[1]})' if dynamic else
        f'(height and width fixed: {name} traced at sides below {traits.traced_min_side} holds at that size only)'))
    buffer = io.BytesIO()
    dynamic_axes = {n: {3: 'height', 4: 'width'} for n in (INPUT_NAME, OUTPUT_NAME)} if dynamic else None
    with warnings.catch_warnings():  # "converting a tensor to a Python value": the constants the docstring explains
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(export_copy(net), (verification_clip(frames, size),), buffer, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=OPSET,
                          dynamic_axes=dynamic_axes)
    model = onnx.load_from_string(buffer.getvalue())
    serialized = model.SerializeToString()  # as load_export serializes the file's model without the metadata entry
    sizes = [size, (size[0] + multiple, size[1] + multiple)] if dynamic else [size]
    progress(f'verifying in ONNX Runtime against PyTorch at {" and ".join(f"{h}x{w}" for h, w in sizes)}')
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about the graph's unused initializers
    session = ort.InferenceSession(serialized, options, providers=['CPUExecutionProvider'])
    original = copy.deepcopy(bare_network(net)).cpu().float().eval()
    differences = [max_difference(session, original, verification_clip(frames, s)) for s in sizes]
    measured = max(differences)
    if not measured <= tolerance:
        worst = sizes[differences.index(measured)]
        raise ExportMismatch(f'{out_path} not written: in ONNX Runtime the exported model differs from {name} in '
                             f'PyTorch by {measured:.3g} at {worst[0]}x{worst[1]}, more than the tolerance '
                             f'{tolerance:g}.')
    before, after = traits.frame_margins
    info = {
        'format': EXPORT_FORMAT, 'network': name,
        'network_options': None if network_options is None else {
            k: v for k, v in network_options.items() if k != 'type'},
        'checkpoint': checkpoint, 'checkpoint_sha256': file_digest(checkpoint) if checkpoint else None,
        'frames': frames, 'output_frames': frames - before - after, 'frame_margins': [before, after],
        'size_multiple': multiple, 'min_size': list(size), 'dynamic_size': dynamic, 'value_range': [0, 1],
        'input': INPUT_NAME, 'output': OUTPUT_NAME, 'tolerance': tolerance, 'max_difference': measured,
        'verified_sizes': [list(s) for s in sizes], 'opset': OPSET, 'torch': torch.__version__,
        'model_sha256': sha256(serialized)}
    info = json.loads(json.dumps(info))  # as a reader parses it back (lists, string keys): what the digest covers
    info['metadata_sha256'] = metadata_digest(info)
    entry = model.metadata_props.add()
    entry.key, entry.value = EXPORT_METADATA_KEY, json.dumps(info)
    data = model.SerializeToString()
    with staged_outputs(files=[out_path], overwrite=overwrite, inputs=inputs, tool='memdeblur export') as staging:
        write_bytes(staging[out_path], data)
    progress(f'wrote {out_path} ({len(data) / 1e6:.1f} MB) in {time.time() - started:.1f} s; largest difference '
             f'from PyTorch {measured:.2g} (tolerance {tolerance:g})')
    return info
