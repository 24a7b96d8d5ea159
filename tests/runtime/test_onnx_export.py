"""ONNX export (tools/export_onnx.py, memdeblur.export.onnx_export): the authors' numbers in ONNX Runtime, the
verification that refuses a differing model, the metadata, where a traced model holds, and the checks that refuse a
file that is not the export as it was written (changed, cut short, empty, of an older version)."""
import hashlib
import json
import re
import subprocess
import sys

import onnx
import onnxruntime as ort
import pytest
import torch
from basicsr.archs import build_network

from memdeblur.export import onnx_export
from memdeblur.export.onnx_export import ExportMismatch, export_onnx
from memdeblur.runtime.backends.export_file import ChangedExport, load_export, read_export_info
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


@pytest.fixture(scope='module')
def estrnn_export(tmp_path_factory):
    """A tiny ESTRNN exported for 3 frames at 16x16 (a fraction of a second)."""
    path = tmp_path_factory.mktemp('export') / 'estrnn.onnx'
    export_onnx(tiny_estrnn(), str(path), 3, (16, 16), progress=quiet)
    return path


def changed_copy(path, out, change):
    """``out``: the export at ``path`` loaded, edited by ``change`` (ModelProto -> None) and saved back, its memdeblur
    metadata kept, as an editor of ONNX files leaves it."""
    model = onnx.load(str(path))
    change(model)
    onnx.save(model, str(out))
    return out


def one_weight_changed(model):
    """One value of the largest initializer (the weights) changed."""
    weight = max(model.graph.initializer, key=lambda tensor: tensor.ByteSize())
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 1
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))


def attribute_changed(model):
    """The first float attribute of a node (a Gemm's alpha, a LeakyReLU's slope) doubled."""
    attribute = next(a for node in model.graph.node for a in node.attribute if a.type == onnx.AttributeProto.FLOAT)
    attribute.f *= 2


def node_added(model):
    """One more node: the output negated."""
    last = model.graph.node[-1]
    assert list(last.output) == ['restored']
    last.output[0] = 'not_negated'
    model.graph.node.append(onnx.helper.make_node('Neg', ['not_negated'], ['restored']))


def edited_metadata(**values):
    """A change setting ``values`` in the memdeblur metadata (keys with None removed), the rest kept."""
    def change(model):
        entry = next(entry for entry in model.metadata_props if entry.key == 'memdeblur')
        info = {**json.loads(entry.value), **values}
        entry.value = json.dumps({key: value for key, value in info.items() if value is not None})
    return change


def changed_message(path):
    """The start of the one line refusing a model whose graph or weights changed after its export."""
    return (f'{path}: its graph or weights no longer match the SHA-256 recorded at export: it was changed after its '
            'export and is not the model that was verified; export the network again (tools/export_onnx.py).')


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
        'format': 2, 'network': 'MemDeblurNet', 'checkpoint': str(memdeblur_official_checkpoint),
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
    ({}, 2, (40, 48), r'^size 40x48: .* multiples of 16 .* e\.g\. 48x48'),
    ({'scales': [2, 1], 'mem_every': [2, 5]}, 2, (36, 40), r'^size 36x40: .* multiples of 8 .* e\.g\. 40x40'),
    ({'type': 'ESTRNNNet', 'n_features': 4, 'n_blocks': 1}, 4, (32, 32), r'^frames 4: .* at least 5 frames'),
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


def test_an_unchanged_export_runs_as_its_file(estrnn_export):
    """The checked model the backends get is the file's model: the same outputs, bit for bit."""
    export = load_export(estrnn_export)
    assert export.info == read_export_info(estrnn_export)
    assert export.info['format'] == 2 and re.fullmatch('[0-9a-f]{64}', export.info['model_sha256'])
    clip = torch.rand(1, 3, 3, 20, 24)
    session = ort.InferenceSession(export.model, providers=['CPUExecutionProvider'])
    assert torch.equal(torch.from_numpy(session.run(['restored'], {'frames': clip.numpy()})[0]),
                       run_onnx(estrnn_export, clip))


@pytest.mark.parametrize('change', [one_weight_changed, attribute_changed, node_added])
def test_a_model_changed_after_its_export_is_refused_in_one_line(estrnn_export, tmp_path, change):
    changed = changed_copy(estrnn_export, tmp_path / 'changed.onnx', change)
    clip = torch.rand(1, 3, 3, 16, 16)
    assert not torch.equal(run_onnx(changed, clip), run_onnx(estrnn_export, clip))  # it runs, and otherwise
    with pytest.raises(ChangedExport) as refused:
        load_export(changed)
    assert str(refused.value) == changed_message(changed)
    with pytest.raises(ChangedExport):
        read_export_info(changed)


@pytest.mark.parametrize('values', [{'dynamic_size': False}, {'frames': 4}, {'model_sha256': '0' * 64}])
def test_metadata_changed_after_the_export_is_refused(estrnn_export, tmp_path, values):
    changed = changed_copy(estrnn_export, tmp_path / 'changed.onnx', edited_metadata(**values))
    with pytest.raises(ChangedExport, match=rf"^{re.escape(str(changed))}: its 'memdeblur' metadata no longer matches "
                                            r'the SHA-256 recorded at export: it was changed after its export'):
        load_export(changed)


def test_an_export_of_an_older_version_without_digests_is_refused(estrnn_export, tmp_path):
    older = changed_copy(estrnn_export, tmp_path / 'older.onnx',
                         edited_metadata(format=1, model_sha256=None, metadata_sha256=None))
    with pytest.raises(onnx_export.DataError, match=rf'^{re.escape(str(older))} was exported by an older version of '
                                                    r'memdeblur \(export format 1, without the digests .*\); export '
                                                    r'the network again \(tools/export_onnx.py\)\.$'):
        load_export(older)


def test_an_export_re_saved_with_its_weights_beside_it_is_refused(estrnn_export, tmp_path):
    """ONNX's external data: the file holds references in place of the weights it was checked with."""
    beside = tmp_path / 'beside.onnx'
    onnx.save_model(onnx.load(str(estrnn_export)), str(beside), save_as_external_data=True, location='beside.weights',
                    size_threshold=0)
    stored = onnx.load(str(beside), load_external_data=False).graph.initializer
    assert all(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in stored)
    clip = torch.rand(1, 3, 3, 16, 16)
    assert torch.equal(run_onnx(beside, clip), run_onnx(estrnn_export, clip))  # the same model, stored otherwise
    with pytest.raises(ChangedExport) as refused:
        load_export(beside)
    assert str(refused.value) == changed_message(beside)


def test_a_file_that_is_not_a_whole_export_says_what_it_is(estrnn_export, tmp_path):
    whole = estrnn_export.read_bytes()
    empty, truncated, not_onnx, no_metadata = (tmp_path / name for name in (
        'empty.onnx', 'truncated.onnx', 'weights.onnx', 'plain.onnx'))
    empty.write_bytes(b'')
    truncated.write_bytes(whole[:len(whole) // 2])
    not_onnx.write_bytes(b'\xff' * 64)
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], [])), str(no_metadata))
    for path, message in (
            (tmp_path / 'absent.onnx', 'absent.onnx: no such file'),
            (empty, r'empty.onnx is empty \(0 bytes\), not an exported model; export the network again'),
            (truncated, 'truncated.onnx is truncated or not an ONNX model: it does not parse as one'),
            (not_onnx, 'weights.onnx is truncated or not an ONNX model'),
            (no_metadata, "plain.onnx has no 'memdeblur' metadata: it was not written by memdeblur's export")):
        with pytest.raises(onnx_export.DataError, match=rf'^{re.escape(str(tmp_path))}/{message}') as refused:
            load_export(path)
        assert '\n' not in str(refused.value)


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
