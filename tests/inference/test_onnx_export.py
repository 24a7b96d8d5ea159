"""ONNX export (tools/export_onnx.py, memdeblur.inference.onnx_export): the authors' numbers in ONNX Runtime, the
verification that refuses a differing model, the metadata, and where a traced model holds."""
import hashlib
import subprocess
import sys

import onnxruntime as ort
import pytest
import torch
from basicsr.archs import build_network

from memdeblur.inference import onnx_export
from memdeblur.inference.onnx_export import ExportMismatch, export_onnx, read_export_info
from memdeblur.networks.traits import network_traits
from memdeblur.utils.option_check import OptionError
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR, fixture_path
from tests.pipeline_helpers import run_tool

ESTRNN_OPTIONS = 'options/baselines/test_estrnn_b15c80_gopro.yml'  # network_g: the ESTRNN fixture's configuration


def run_onnx(path, clip):
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return torch.from_numpy(session.run(['restored'], {'frames': clip.float().numpy()})[0])


def tiny_memdeblur(**options):
    torch.manual_seed(0)
    return build_network({'type': 'MemDeblurNet', **TINY_MEMDEBLUR, **options}).eval()


def tiny_estrnn():
    torch.manual_seed(0)
    return build_network({'type': 'ESTRNNNet', 'n_features': 4, 'n_blocks': 1, 'past_frames': 1, 'future_frames': 1})


def quiet(line):
    pass


@pytest.mark.slow
def test_released_checkpoint_exported_by_the_tool_reproduces_the_authors_vectors(memdeblur_official_checkpoint,
                                                                                 memdeblur_vectors, tmp_path):
    out = tmp_path / 'memdeblur.onnx'
    result = run_tool('export_onnx.py', memdeblur_official_checkpoint, '-o', out, '--frames', 7, '--size', '64x96')
    assert result.returncode == 0, result.stderr
    restored = run_onnx(out, memdeblur_vectors['input'])
    assert restored.shape == (1, 7, 3, 64, 96)
    assert (restored.double() - memdeblur_vectors['outputs_eval'][-1]).abs().max() < 1e-4
    info = read_export_info(out)
    with open(memdeblur_official_checkpoint, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert {k: info[k] for k in ('format', 'network', 'checkpoint', 'checkpoint_sha256', 'frames', 'output_frames',
                                 'frame_margins', 'size_multiple', 'min_size', 'dynamic_size', 'value_range', 'input',
                                 'output', 'tolerance', 'verified_sizes', 'opset')} == {
        'format': 1, 'network': 'MemDeblurNet', 'checkpoint': str(memdeblur_official_checkpoint),
        'checkpoint_sha256': sha, 'frames': 7, 'output_frames': 7, 'frame_margins': [0, 0], 'size_multiple': 16,
        'min_size': [64, 96], 'dynamic_size': False, 'value_range': [0, 1], 'input': 'frames', 'output': 'restored',
        'tolerance': 1e-4, 'verified_sizes': [[64, 96]], 'opset': 17}
    assert info['network_options'] == {k: v for k, v in memdeblur_vectors['config'].items()}
    assert 0 <= info['max_difference'] <= 1e-4 and info['torch'] == torch.__version__


@pytest.mark.slow
def test_estrnn_checkpoint_exported_by_the_tool_reproduces_the_authors_vectors(estrnn_official_checkpoint, tmp_path):
    vectors = torch.load(fixture_path('official_estrnn', 'io.pt'), map_location='cpu', weights_only=True)
    out = tmp_path / 'estrnn.onnx'
    result = run_tool('export_onnx.py', estrnn_official_checkpoint, '-o', out, '--opt', ESTRNN_OPTIONS,
                      '--frames', 8, '--size', '64x96')
    assert result.returncode == 0, result.stderr
    assert (run_onnx(out, vectors['input']).double() - vectors['output']).abs().max() < 1e-4
    info = read_export_info(out)
    assert (info['frames'], info['output_frames'], info['frame_margins'], info['size_multiple']) == (8, 4, [2, 2], 4)
    assert info['dynamic_size'] and info['verified_sizes'] == [[64, 96], [68, 100]]
    assert info['network_options'] == vectors['config']
    assert run_onnx(out, torch.rand(1, 8, 3, 80, 128)).shape == (1, 4, 3, 80, 128)  # any larger multiple of 4


def test_a_model_differing_from_pytorch_is_not_written(tmp_path):
    out = tmp_path / 'tiny.onnx'
    with pytest.raises(ExportMismatch, match=r'not written: .* differs from ESTRNNNet in PyTorch by .*1e-12'):
        export_onnx(tiny_estrnn(), str(out), 3, (16, 16), tolerance=1e-12, progress=quiet)
    assert list(tmp_path.iterdir()) == []  # no output, no staging or lock sibling


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    out = tmp_path / 'tiny.onnx'
    out.write_bytes(b'earlier')
    with pytest.raises(FileExistsError, match='pass --force'):
        export_onnx(tiny_estrnn(), str(out), 3, (16, 16), progress=quiet)
    assert out.read_bytes() == b'earlier'
    info = export_onnx(tiny_estrnn(), str(out), 3, (16, 16), overwrite=True, progress=quiet)
    assert read_export_info(out) == info and sorted(p.name for p in tmp_path.iterdir()) == ['tiny.onnx']


@pytest.mark.parametrize('options, frames, size, message', [
    ({}, 2, (40, 48), r'--size 40x48: .* multiples of 16 .* e\.g\. 48x48'),
    ({'scales': [2, 1], 'mem_every': [2, 5]}, 2, (36, 40), r'--size 36x40: .* multiples of 8 .* e\.g\. 40x40'),
    ({'type': 'ESTRNNNet', 'n_features': 4, 'n_blocks': 1}, 4, (32, 32), r'--frames 4: .* at least 5 frames'),
    ({'type': 'EDVR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_frame': 3, 'deformable_groups': 1,
      'num_extract_block': 1, 'num_reconstruct_block': 1}, 3, (32, 32), 'centre frame of windows of 3 frames'),
])
def test_arguments_a_traced_model_would_not_hold_for_are_refused(tmp_path, options, frames, size, message):
    net = build_network({'type': 'MemDeblurNet', **TINY_MEMDEBLUR, **options} if 'type' not in options else options)
    with pytest.raises(OptionError, match=message):
        export_onnx(net, str(tmp_path / 'x.onnx'), frames, size, progress=quiet)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize('options', [{'top_k': 3}, {'scales': [2, 1], 'mem_every': [2, 5], 'top_k': 8}])
def test_a_trace_from_the_declared_smallest_dynamic_side_holds_at_larger_sizes(tmp_path, options):
    """At the traced_min_side every read-out is already a top-k one: the trace's graph stops changing with the size
    (one multiple below, a read-out still takes the full softmax), and the model matches PyTorch at larger sizes."""
    net = tiny_memdeblur(**options)
    traits = network_traits(net)
    side, multiple = traits.traced_min_side, traits.traced_size_multiple

    def top_k_reads(size):
        info = export_onnx(net, str(tmp_path / f'{size}.onnx'), 3, size, progress=quiet)
        graph = onnx_export.require('onnx', 'onnx', 'test').load(str(tmp_path / f'{size}.onnx'))
        return info, sum(node.op_type == 'TopK' for node in graph.graph.node)

    below, below_reads = top_k_reads((side - multiple, side - multiple))
    at, at_reads = top_k_reads((side, side))
    _, larger_reads = top_k_reads((side + 3 * multiple, side + 2 * multiple))
    assert not below['dynamic_size'] and at['dynamic_size']
    assert below_reads < at_reads == larger_reads
    clip = torch.rand(1, 3, 3, side + 3 * multiple, side + 5 * multiple)
    with torch.no_grad():
        expected = net(clip)
    assert (run_onnx(tmp_path / f'{(side, side)}.onnx', clip) - expected).abs().max() < 1e-5


def test_read_export_info_names_the_file_that_is_not_an_export(tmp_path):
    not_onnx, no_metadata = tmp_path / 'weights.onnx', tmp_path / 'plain.onnx'
    not_onnx.write_bytes(b'\xff' * 64)
    onnx = onnx_export.require('onnx', 'onnx', 'test')
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], [])), str(no_metadata))
    with pytest.raises(onnx_export.DataError, match='weights.onnx is not an ONNX model'):
        read_export_info(not_onnx)
    with pytest.raises(onnx_export.DataError, match="plain.onnx has no 'memdeblur' metadata"):
        read_export_info(no_metadata)


def test_a_missing_onnx_runtime_is_one_line_naming_the_extra(tmp_path, memdeblur_official_checkpoint):
    script = ('import runpy, sys; sys.modules["onnxruntime"] = None; sys.argv = sys.argv[1:]; '
              'runpy.run_path(sys.argv[0], run_name="__main__")')
    result = subprocess.run([sys.executable, '-c', script, 'tools/export_onnx.py', memdeblur_official_checkpoint,
                             '-o', str(tmp_path / 'x.onnx')], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: ONNX Runtime is needed to verify an export: pip install 'memdeblur[onnx]'"]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_checkpoint_is_one_line(tmp_path):
    result = run_tool('export_onnx.py', tmp_path / 'absent.pth', '-o', tmp_path / 'x.onnx')
    assert result.returncode == 1 and 'absent.pth' in result.stderr and 'Traceback' not in result.stderr
    assert list(tmp_path.iterdir()) == []
