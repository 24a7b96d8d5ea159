"""tools/deblur_video.py with an exported model: ONNX Runtime and OpenVINO write what the PyTorch path writes
(within a level), with windows, tiles and under torchrun; what an export cannot do, and a file that is not the export
as it was written, are refused in one line."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.export.onnx_export import export_onnx
from memdeblur.utils.option_check import OptionError
from tests.conftest import REPO_ROOT
from tests.runtime.test_onnx_backends import TINY_DYNAMIC
from tests.runtime.test_onnx_export import changed_copy, changed_message, one_weight_changed
from tests.runtime.test_restorer import saturated_frames
from tests.pipeline_helpers import run_tool
from tests.tools.test_video_sharing import ENV, TOOL, deblur


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Options + weights of a tiny MemDeblur, and its export for windows of 4 frames."""
    root = tmp_path_factory.mktemp('models')
    torch.manual_seed(0)
    net = MemDeblurNet(**TINY_DYNAMIC).eval()
    weights = root / 'tiny.pth'
    torch.save({'params': net.state_dict()}, weights)
    options = root / 'tiny.yml'
    options.write_text(yaml.safe_dump({'name': 'tiny', 'network_g': {'type': 'MemDeblurNet', **TINY_DYNAMIC},
                                       'path': {'pretrain_network_g': str(weights)}}))
    onnx = root / 'tiny.onnx'
    export_onnx(net, str(onnx), 4, (32, 32), network_options=dict(TINY_DYNAMIC), checkpoint=str(weights),
                progress=lambda line: None)
    return str(options), str(onnx)


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    """Seven frames of saturated blocks, 48x64: windows of 4 sharing 1 frame cover them exactly."""
    folder = tmp_path_factory.mktemp('clip') / 'seq'
    folder.mkdir()
    for index, frame in enumerate(saturated_frames(7, 48, 64)):
        cv2.imwrite(str(folder / f'{index:03d}.png'), frame[..., ::-1])
    return folder


def frames_of(folder):
    return [cv2.imread(str(path)).astype(int) for path in sorted(folder.glob('*.png'))]


def levels_apart(first, second):
    a, b = frames_of(first), frames_of(second)
    assert len(a) == len(b) == 7
    return max(np.abs(x - y).max() for x, y in zip(a, b))


@pytest.mark.slow
@pytest.mark.parametrize('tiles', [(), ('--tile', '32', '--tile-overlap', '16')])
def test_onnx_runtime_and_openvino_write_what_the_pytorch_path_writes(models, clip, tmp_path, tiles):
    options, onnx = models
    reference = deblur(clip, '-o', tmp_path / 'pytorch', '--opt', options, '--window', 4, '--overlap', 1, *tiles)
    assert reference.returncode == 0, reference.stderr[-2000:]
    for backend in ('onnxruntime', 'openvino'):
        run = deblur(clip, '-o', tmp_path / backend, '--ckpt', onnx, '--backend', backend, *tiles)
        assert run.returncode == 0, run.stderr[-2000:]
        assert levels_apart(tmp_path / 'pytorch', tmp_path / backend) <= 1, backend


@pytest.mark.slow
def test_torchrun_shares_the_windows_of_an_exported_model(models, clip, tmp_path):
    _, onnx = models
    one = deblur(clip, '-o', tmp_path / 'one', '--ckpt', onnx)
    assert one.returncode == 0, one.stderr[-2000:]
    two = deblur(clip, '-o', tmp_path / 'two', '--ckpt', onnx, '--scratch', tmp_path, processes=2, port=29581)
    assert two.returncode == 0, two.stderr[-2000:]
    assert [f.tolist() for f in frames_of(tmp_path / 'one')] == [f.tolist() for f in frames_of(tmp_path / 'two')]


def run_without(module, *args):
    """The tool in a process where ``module`` cannot be imported (as when its extra is not installed)."""
    code = (f'import runpy, sys; sys.modules[{module!r}] = None; sys.argv = {[TOOL, *map(str, args)]!r}; '
            f'runpy.run_path({TOOL!r}, run_name="__main__")')
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV, timeout=300,
                          cwd=REPO_ROOT)


def test_what_an_exported_model_cannot_do_is_one_line(models, clip, tmp_path):
    options, onnx = models
    for args, words in ((('--ckpt', onnx, '--exact'), 'exact whole-sequence restoration runs a PyTorch network'),
                        (('--ckpt', onnx, '--window', 6), 'was exported for windows of 4 frames'),
                        (('--ckpt', onnx, '--opt', options), 'is an exported model (it holds its network): drop --opt'),
                        (('--ckpt', onnx, '--backend', 'pytorch'), 'backend pytorch runs networks, not exported models'),
                        (('--opt', options, '--backend', 'openvino'), 'export the network first, e.g. python '
                                                                      'tools/export_onnx.py'),
                        (('--ckpt', onnx, '--precision', 'bfloat16'), 'ONNX Runtime runs exported models in float32')):
        result = deblur(clip, '-o', tmp_path / 'out', *args)
        assert result.returncode == 1 and words in result.stderr, (args, result.stderr[-1500:])
        assert 'Traceback' not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    missing = run_without('onnxruntime', clip, '-o', tmp_path / 'out', '--ckpt', onnx)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: ONNX Runtime is needed to run {onnx} in ONNX Runtime: pip install 'memdeblur[onnx]'"]
    assert not os.path.exists(tmp_path / 'out')


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_a_file_that_is_not_the_export_as_written_is_one_line(models, clip, tmp_path, backend):
    _, onnx = models
    changed = changed_copy(onnx, tmp_path / 'changed.onnx', one_weight_changed)
    whole = Path(onnx).read_bytes()
    (tmp_path / 'truncated.onnx').write_bytes(whole[:len(whole) // 2])
    (tmp_path / 'empty.onnx').write_bytes(b'')
    for path, line in ((changed, changed_message(changed)),
                       (tmp_path / 'truncated.onnx', f'{tmp_path}/truncated.onnx is truncated or not an ONNX model'),
                       (tmp_path / 'empty.onnx', f'{tmp_path}/empty.onnx is empty (0 bytes)')):
        result = run_tool('deblur_video.py', clip, '-o', tmp_path / 'out', '--ckpt', path, '--backend', backend)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(f'error: {line}'), result.stderr
        assert not os.path.exists(tmp_path / 'out')


def test_a_video_job_from_python_reads_an_export_once_and_writes_what_the_tool_writes(models, clip, tmp_path,
                                                                                     monkeypatch):
    """``run_video_job`` is the tool's work without the command line: the same frames, and the model's file parsed
    once per run (its metadata for the settings and the record, its graph for the session)."""
    import onnx

    from memdeblur.video.job import VideoJob, run_video_job
    _, exported = models
    tool = deblur(clip, '-o', tmp_path / 'tool', '--ckpt', exported)
    assert tool.returncode == 0, tool.stderr[-2000:]
    parses, parse = [], onnx.load_from_string
    monkeypatch.setattr(onnx, 'load_from_string', lambda data: parses.append(len(data)) or parse(data))
    lines = []
    assert run_video_job(VideoJob(str(clip), str(tmp_path / 'job'), ckpt=exported, device='cpu'),
                         say=lines.append) == 0
    assert len(parses) == 1
    assert [f.tolist() for f in frames_of(tmp_path / 'tool')] == [f.tolist() for f in frames_of(tmp_path / 'job')]
    assert lines[-1].startswith(f'seq: 7 frames -> {tmp_path / "job"}')
    with pytest.raises(OptionError, match=r'^window 6: .*tiny.onnx was exported for windows of 4 frames'):
        run_video_job(VideoJob(str(clip), str(tmp_path / 'other'), ckpt=exported, window=6))
