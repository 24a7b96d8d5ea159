"""Networks describe themselves (``memdeblur.networks.traits``), and nothing else asks which network it holds."""
import ast
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from torch import nn

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.media.images import write_png
from memdeblur.media.inputs import find_inputs
from memdeblur.utils.padding import SpatialPadding
from memdeblur.runtime.restorer import Restorer
from memdeblur.video.deblurrer import VideoDeblurrer
from memdeblur.networks.checkpoint import CheckpointError, convert_official_state_dict, official_key_rules
from memdeblur.networks.traits import NetworkTraits, network_traits
from tests.conftest import REPO_ROOT, TINY_MEMDEBLUR

TINY_EDVR = {'type': 'EDVR', 'num_feat': 8, 'num_frame': 3, 'deformable_groups': 1, 'num_extract_block': 1,
             'num_reconstruct_block': 1}
TINY_BASICVSRPP = {'type': 'BasicVSRPlusPlus', 'mid_channels': 8, 'num_blocks': 1}


def test_each_network_declares_what_the_code_around_it_needs():
    memdeblur = network_traits(MemDeblurNet(**TINY_MEMDEBLUR))
    assert memdeblur.whole_sequence_passes and memdeblur.official_keys is MemDeblurNet.official_keys
    assert (memdeblur.frame_margins, memdeblur.window, memdeblur.size_multiple) == ((0, 0), None, 1)
    estrnn = network_traits(ESTRNNNet(n_features=4, n_blocks=1, past_frames=2, future_frames=1))
    assert estrnn.frame_margins == (2, 1) and not estrnn.whole_sequence_passes
    assert estrnn.official_keys is ESTRNNNet.official_keys


@pytest.mark.parametrize('options, traits', [
    (TINY_EDVR, NetworkTraits(window=3, size_multiple=4)),
    ({**TINY_EDVR, 'hr_in': True, 'with_tsa': False}, NetworkTraits(window=3, size_multiple=16)),
    (TINY_BASICVSRPP, NetworkTraits(min_size=64)),
    ({**TINY_BASICVSRPP, 'is_low_res_input': False}, NetworkTraits(size_multiple=4, min_size=256)),
])
def test_basicsr_networks_are_declared_in_one_place(options, traits):
    assert network_traits(build_network(dict(options))) == traits


def test_wrappers_are_looked_through_and_undeclared_networks_get_the_defaults():
    net = ESTRNNNet(n_features=4, n_blocks=1)
    wrapped = nn.Module()
    wrapped.module = net  # as DDP and DataParallel hold it
    assert network_traits(wrapped).frame_margins == (2, 2)
    compiled = nn.Module()
    compiled._orig_mod = net  # as torch.compile's wrapper holds it
    assert network_traits(compiled).frame_margins == (2, 2)
    assert network_traits(nn.Conv2d(3, 3, 3)) == NetworkTraits()


def test_padding_follows_the_traits():
    assert network_traits(build_network({**TINY_EDVR, 'hr_in': True})).padding() == SpatialPadding(16, 0)
    assert network_traits(build_network({**TINY_BASICVSRPP, 'is_low_res_input': False})).padding() == SpatialPadding(
        4, 256)


def test_official_keys_come_from_the_network():
    estrnn = ESTRNNNet(n_features=4, n_blocks=1)
    official = {'module.model.cell.F_B0.0.weight': torch.zeros(1), 'model.recons.model.0.bias': torch.zeros(1)}
    converted = convert_official_state_dict(official, official_key_rules(estrnn))
    assert list(converted) == ['cell.encoder.0.0.weight', 'reconstructor.0.bias']
    assert 'forward_trunk.0.conv1.weight' in convert_official_state_dict(
        {'model.forward_resblocks.main.0.0.conv1.weight': torch.zeros(1)}, official_key_rules(MemDeblurNet()))
    with pytest.raises(CheckpointError, match='Conv2d declares no original-format checkpoint keys'):
        official_key_rules(nn.Conv2d(3, 3, 3))


def test_video_deblurrer_pads_frames_to_the_sizes_a_network_takes(tmp_path):
    """BasicVSR++ on full-resolution frames needs 256x256 at least: small frames are padded and cropped back."""
    torch.manual_seed(0)
    net = build_network({**TINY_BASICVSRPP, 'is_low_res_input': False}).eval()
    frames = tmp_path / 'frames'
    frames.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        write_png(str(frames / f'{index:03d}.png'), rng.integers(0, 256, (30, 42, 3), np.uint8))
    (seq, ) = find_inputs(str(frames))
    deblurrer = VideoDeblurrer(Restorer(net, 'cpu', window=3, overlap=0))
    summary = deblurrer.deblur(seq, str(tmp_path / 'out'), inputs=[str(frames)])
    assert summary['frames'] == 3 and sorted(p.name for p in (tmp_path / 'out').glob('*.png')) == [
        '000.png', '001.png', '002.png']
    with pytest.raises(Exception, match='restores the centre of a 3-frame window'):
        Restorer(build_network(dict(TINY_EDVR)), 'cpu')


def type_name_comparisons(path):
    """Comparisons in a source file that decide by a network's or model's type name: ``model_type`` or
    ``network_g['type']`` values, or ``type(x).__name__`` / ``__class__.__name__``, compared with something."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            if isinstance(side, ast.Constant):  # 'model_type' in opt: whether the key is there, not its value
                continue
            text = ast.unparse(side)
            if 'model_type' in text or "['type']" in text or "get('type')" in text or (
                    text.endswith('.__name__') and ('type(' in text or '__class__' in text)):
                found.append(f'{path}:{node.lineno}: {ast.unparse(node)}')
    return found


def test_no_code_decides_by_comparing_a_network_or_model_type_name():
    found = []
    for folder in ('memdeblur', 'tools'):
        for root, _, files in os.walk(os.path.join(REPO_ROOT, folder)):
            found += [c for f in files if f.endswith('.py') for c in type_name_comparisons(os.path.join(root, f))]
    assert not found, '\n'.join(found)
