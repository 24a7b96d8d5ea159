"""Exported models through the Restorer: ONNX Runtime and OpenVINO against the PyTorch path, windows, tiles,
margins, short sequences, the settings an export fixes, and a file changed after its export refused by both."""
import sys

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import torch

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.runtime.backends import open_model
from memdeblur.export.onnx_export import export_onnx
from memdeblur.runtime.backends.export_file import ChangedExport, load_export
from memdeblur.runtime.restorer import Restorer
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.precision import cpu_has_native_bfloat16
from tests.conftest import TINY_MEMDEBLUR
from tests.runtime.test_onnx_export import attribute_changed, changed_copy, changed_message, one_weight_changed
from tests.runtime.test_restorer import TINY_ESTRNN, saturated_frames

# top_k None: every read-out a full softmax, so a trace at 32x32 holds at every multiple of 16 (network_traits)
TINY_DYNAMIC = {**TINY_MEMDEBLUR, 'top_k': None}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A tiny MemDeblur and its export for windows of 4 frames, traced at 32x32."""
    torch.manual_seed(0)
    net = MemDeblurNet(**TINY_DYNAMIC).eval()
    path = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    export_onnx(net, path, 4, (32, 32), progress=lambda line: None)
    return net, path


def levels_apart(ours, theirs):
    return max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(ours, theirs))


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_an_exported_model_restores_as_the_pytorch_path_with_windows_and_tiles(exported, backend):
    net, path = exported
    frames = saturated_frames(7, 48, 64)  # windows of 4 sharing 1 frame cover 7 frames exactly
    for tile, tile_overlap in ((0, 0), (32, 16)):
        settings = dict(window=4, overlap=1, tile=tile, tile_overlap=tile_overlap)
        theirs = list(Restorer(net, 'cpu', **settings).restore(frames))
        ours = list(Restorer(path, 'cpu', backend=backend, **settings).restore(frames))
        assert len(ours) == 7 and all(o.shape == (48, 64, 3) and o.dtype == np.uint8 for o in ours)
        assert levels_apart(ours, theirs) <= 1, (backend, tile)


def test_frames_the_export_does_not_take_are_padded_and_cropped_back(exported):
    """Sides that are not multiples of 16 (odd ones too): padded as the network pads, so at most a level apart
    near the edges is not promised; every frame comes back at its own size, close to the PyTorch path's."""
    net, path = exported
    frames = saturated_frames(4, 37, 45)
    ours = list(Restorer(path, 'cpu').restore(frames))
    theirs = list(Restorer(net, 'cpu', window=4, overlap=1).restore(frames))
    assert all(o.shape == (37, 45, 3) for o in ours)
    assert np.mean([np.abs(o.astype(int) - t.astype(int)).mean() for o, t in zip(ours, theirs)]) < 2


def test_sequences_shorter_or_longer_than_the_export_window_give_every_frame(exported):
    net, path = exported
    restorer = Restorer(path, 'cpu', overlap=1)
    assert restorer.settings.window == 4
    for count in (1, 3, 9):  # shorter than a window (reflected in time), and a tail after full windows
        frames = saturated_frames(count, 32, 48, seed=count)
        assert len(list(restorer.restore(frames))) == count
    aligned = saturated_frames(9, 32, 48, seed=9)
    tail = list(restorer.restore(aligned))[-2:]  # the last two frames come from the window of frames 5-8
    window = list(Restorer(net, 'cpu', window=4, overlap=0).restore(aligned[5:]))[-2:]
    assert levels_apart(tail, window) <= 1


def test_estrnn_export_restores_every_frame_with_its_margins(tmp_path):
    torch.manual_seed(0)
    net = ESTRNNNet(**TINY_ESTRNN).eval()
    path = str(tmp_path / 'estrnn.onnx')
    export_onnx(net, path, 8, (32, 32), progress=lambda line: None)
    restorer = Restorer(path, 'cpu', overlap=1)
    assert restorer.settings.window == 4  # 8 frames in, the 4 between the margins out
    frames = saturated_frames(7, 32, 48)
    ours = list(restorer.restore(frames))
    theirs = list(Restorer(net, 'cpu', window=4, overlap=1).restore(frames))
    assert len(ours) == 7 and levels_apart(ours, theirs) <= 1


def test_settings_an_export_fixes_are_refused(exported):
    _, path = exported
    for settings, words in ((dict(window=6), 'exported for windows of 4 frames'),
                            (dict(exact=True), 'exact whole-sequence restoration runs a PyTorch network'),
                            (dict(compile_net=True), 'runs as exported'),
                            (dict(precision='bfloat16'), 'ONNX Runtime runs exported models in float32'),
                            (dict(backend='tensorrt'), "backend 'tensorrt'")):
        with pytest.raises(OptionError, match=words):
            Restorer(path, 'cpu', **settings)


def test_openvino_bfloat16_runs_where_the_cpu_has_bfloat16(exported):
    net, path = exported
    if not cpu_has_native_bfloat16():
        with pytest.raises(OptionError, match='no bfloat16 instructions'):
            Restorer(path, 'cpu', backend='openvino', precision='bfloat16')
        return
    frames = saturated_frames(4, 32, 48)
    ours = list(Restorer(path, 'cpu', backend='openvino', precision='bfloat16').restore(frames))
    theirs = list(Restorer(net, 'cpu', window=4, overlap=0).restore(frames))
    assert np.mean([np.abs(o.astype(int) - t.astype(int)).mean() for o, t in zip(ours, theirs)]) < 1


def test_a_missing_runtime_is_one_line_naming_the_extra(exported, monkeypatch):
    _, path = exported
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(OptionError, match=r"ONNX Runtime is needed to run .*tiny.onnx in ONNX Runtime: pip install "
                                          r"'memdeblur\[onnx\]'"):
        Restorer(path, 'cpu')
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(OptionError, match=r"pip install 'memdeblur\[openvino\]'"):
        Restorer(path, 'cpu', backend='openvino')


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_both_backends_run_an_unchanged_export_as_its_file(exported, backend):
    """The checked model a backend is given gives what the backend gives running the file itself, bit for bit,
    whether the backend reads the file or takes it as load_export read it."""
    _, path = exported
    clip = torch.from_numpy(np.stack(saturated_frames(4, 32, 48))).permute(0, 3, 1, 2).float() / 255
    if backend == 'onnxruntime':
        session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        expected = session.run(None, {'frames': clip[None].numpy()})[0][0]
    else:
        compiled = ov.Core().compile_model(path, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
        expected = compiled.create_infer_request().infer({0: clip[None].numpy()})[compiled.output(0)][0]
    expected = torch.from_numpy(expected).clamp(0, 1)
    for model in (path, load_export(path)):
        assert torch.equal(open_model(model, backend).restore_clip(clip), expected), (backend, model)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
@pytest.mark.parametrize('change', [one_weight_changed, attribute_changed])
def test_both_backends_refuse_a_model_changed_after_its_export(exported, tmp_path, backend, change):
    _, path = exported
    changed = changed_copy(path, tmp_path / 'changed.onnx', change)
    with pytest.raises(ChangedExport) as refused:
        Restorer(str(changed), 'cpu', backend=backend)
    assert str(refused.value) == changed_message(changed)


def test_an_exported_model_runs_a_session_of_the_thread_count_the_run_chose(exported, monkeypatch):
    """ONNX Runtime fixes its threads when a session is made: a count the governor moves to gets a session of its
    own, whose outputs differ from the other's by float rounding only. OpenVINO keeps the session it started with
    (compiled models of two thread counts in one process crash its CPU plugin later)."""
    from memdeblur.utils.threads import process_governor
    _, path = exported
    clip = torch.from_numpy(np.stack(saturated_frames(4, 32, 48))).permute(0, 3, 1, 2).float() / 255
    governor = process_governor()
    chosen = governor.threads
    runtime, openvino = open_model(path, 'onnxruntime'), open_model(path, 'openvino')
    before = runtime.restore_clip(clip)
    other = 1 if chosen != 1 else 2
    monkeypatch.setattr(governor, 'threads', other)
    after = runtime.restore_clip(clip)
    openvino.restore_clip(clip)
    assert set(runtime._runs) == {chosen, other} and set(openvino._runs) == {chosen}
    assert (before - after).abs().max().item() <= 1e-5
