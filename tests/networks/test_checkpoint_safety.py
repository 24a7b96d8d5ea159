"""Checkpoints a hostile or careless user may hand over: zip bombs, sizes the file cannot hold, non-tensor weights.

Each is refused with a ``CheckpointError`` naming the file, before anything is inflated."""
import json
import struct
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import torch

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import CheckpointError, load_pretrained, read_checkpoint
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR
from tests.pipeline_helpers import run_tool

BOMB_MIB = 256


def repack(src, dst, compress=zipfile.ZIP_DEFLATED, zeros_mib=None):
    """``src`` (a torch.save file) re-zipped with every record compressed; ``zeros_mib``: its first tensor's record
    replaced by that many MiB of zeros, deflated (a zip bomb of about 1/1000 of that size), written in chunks."""
    with zipfile.ZipFile(src) as source, zipfile.ZipFile(dst, 'w') as target:
        for record in source.infolist():
            info = zipfile.ZipInfo(record.filename)
            info.compress_type = compress
            if zeros_mib and record.filename.endswith('/data/0'):
                with target.open(info, 'w', force_zip64=True) as f:
                    for _ in range(zeros_mib):
                        f.write(bytes(2**20))
            else:
                target.writestr(info, source.read(record.filename))
    return str(dst)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'tiny.pth'
    torch.save({'params': MemDeblurNet(**TINY_MEMDEBLUR).state_dict()}, path)
    return str(path)


PEAK_SCRIPT = '''
import json, resource, sys, time
import memdeblur
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import CheckpointError, load_pretrained
net = MemDeblurNet(**json.loads(sys.argv[2]))
before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
try:
    load_pretrained(net, sys.argv[1])
    message = None
except CheckpointError as err:
    message = str(err)
print(json.dumps({'grew_mib': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
                  'seconds': time.perf_counter() - start, 'message': message}))
'''


def test_a_zip_bomb_is_refused_before_it_fills_the_memory(tiny_checkpoint, tmp_path):
    """A 0.3 MB checkpoint declaring 256 MiB of zeros: refused from the zip directory, the process's peak memory
    (measured in a fresh interpreter) growing by far less than the declared size."""
    bomb = repack(tiny_checkpoint, tmp_path / 'bomb.pth', zeros_mib=BOMB_MIB)
    result = subprocess.run([sys.executable, '-c', PEAK_SCRIPT, bomb, json.dumps(TINY_MEMDEBLUR)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    assert measured['message'] and 'bomb.pth' in measured['message']
    assert f"/data/0' would inflate to {BOMB_MIB * 2**20} bytes from " in measured['message']
    assert 'Refused before inflating' in measured['message']
    assert measured['grew_mib'] < BOMB_MIB / 8 and measured['seconds'] < 1, measured
    with pytest.raises(CheckpointError, match=r'more than the \d+ allowed \(at most 100 times\)'):
        read_checkpoint(bomb)  # no network to size it by: the compression ratio alone


def test_compressed_records_inflating_beyond_what_the_network_needs_are_refused(tiny_checkpoint, tmp_path):
    """Honest compression loads; records inflating to more than 4 times the network's weights do not, even at a
    compression ratio a real file could have."""
    deflated = repack(tiny_checkpoint, tmp_path / 'deflated.pth')
    net = load_pretrained(MemDeblurNet(**TINY_MEMDEBLUR), deflated)
    assert torch.equal(net.state_dict()['encoder.0.weight'], torch.load(tiny_checkpoint)['params']['encoder.0.weight'])
    torch.manual_seed(0)
    larger = tmp_path / 'larger.pth'
    torch.save({'params': {'w': torch.randint(0, 4, (2**21,), dtype=torch.uint8)}}, larger)  # packs about 4:1
    packed = repack(larger, tmp_path / 'larger_deflated.pth')
    assert read_checkpoint(packed)['params']['w'].numel() == 2**21  # no network given: the ratio is plausible
    tiny = torch.nn.Conv2d(3, 3, 3)  # 456 bytes of weights
    with pytest.raises(CheckpointError, match=r'larger_deflated\.pth.* and what this network needs'):
        load_pretrained(tiny, packed)


def test_records_declaring_more_than_the_file_holds_are_refused(tiny_checkpoint, tmp_path):
    """A stored record whose directory entry claims 1 GiB in a file of a few kilobytes."""
    data = bytearray(open(tiny_checkpoint, 'rb').read())
    with zipfile.ZipFile(tiny_checkpoint) as archive:
        name = next(r.filename for r in archive.infolist() if r.filename.endswith('/data/0')).encode()
    entry = data.index(b'PK\x01\x02' + data[data.index(name) - 30 + 4:data.index(name) - 30 + 6])  # central entry
    entry = data.index(name, entry) - 46
    for offset in (20, 24):  # compressed and uncompressed size
        data[entry + offset:entry + offset + 4] = struct.pack('<I', 2**30)
    crafted = tmp_path / 'claims_a_gigabyte.pth'
    crafted.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"claims_a_gigabyte\.pth' declares \d+ bytes of stored records, more "
                                              r'than the \d+ bytes the file holds'):
        load_pretrained(MemDeblurNet(**TINY_MEMDEBLUR), str(crafted))


@pytest.mark.parametrize('checkpoint, expected', [
    ({'params': {'conv.weight': 3}}, r"1 entry of params is not tensors: conv\.weight \(int\)"),
    ({'params': {'a': torch.ones(1), 'b': 'text', 'c': [torch.ones(1)]}},
     r'2 entries of params are not tensors: b \(str\), c \(list\)'),
    ({'params': [torch.ones(1)]}, r'params is a list, not a dict of tensors'),
    ({'params_ema': {'x': None}}, r'params_ema is not tensors: x \(NoneType\)'),
    ({'state_dict': {'model.downsampling.0.weight': 1.5}}, r'state_dict is not tensors: '
                                                          r'model\.downsampling\.0\.weight \(float\)'),
], ids=['number', 'mixed', 'list', 'ema', 'official'])
def test_weights_that_are_not_tensors_are_named(checkpoint, expected, tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"Checkpoint '.*odd\.pth'.*" + expected):
        load_pretrained(MemDeblurNet(**TINY_MEMDEBLUR), str(path))


def test_tools_print_one_line_for_non_tensor_weights(tmp_path):
    path = tmp_path / 'numbers.pth'
    torch.save({'params': {'conv.weight': 3}}, path)
    options = tmp_path / 'tiny.yml'
    options.write_text(json.dumps({'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR}}))
    frames = tmp_path / 'frames'
    frames.mkdir()
    cv2.imwrite(str(frames / '000000.png'), np.zeros((32, 32, 3), np.uint8))
    result = run_tool('deblur_video.py', frames, '-o', tmp_path / 'out', '--opt', options, '--ckpt', path)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: Checkpoint '{path}': 1 entry of params is not tensors: "
                                                      'conv.weight (int). Weights used: params, the default. The '
                                                      'file holds params.')
