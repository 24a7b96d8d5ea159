"""Options that would allocate absurd sizes are refused when the options file is read, naming the limit: networks
measured on the meta device (``memdeblur.networks.network_size``), batches from their sizes."""
import time

import basicsr.utils.logger
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.network_size import MAX_NETWORK_MODULES, measure_network
from memdeblur.run_options import read_options
from memdeblur.utils.option_check import OptionError
from tests.pipeline_helpers import load_options, run_tool, write_options

LIMIT = r'more than the 16\.0 GiB an options file may size one allocation at \(MAX_OPTION_BYTES'


def test_the_count_is_the_built_networks():
    size = measure_network({'type': 'MemDeblurNet'})
    net = MemDeblurNet()
    assert size.parameters == sum(p.numel() for p in net.parameters())
    assert size.tensor_bytes == sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])
    assert size.modules == len(list(net.modules()))


def test_measuring_leaves_basicsrs_logger_to_the_run(tmp_path, monkeypatch):
    """BasicSR's logger takes its log file only when first used: measuring the network while the options are read
    must not use it (``build_network`` logs), or the run's log file would never be written."""
    monkeypatch.setattr(basicsr.utils.logger, 'initialized_logger', {})
    read_options(write_options(tmp_path, load_options('baselines/test_edvr_synthetic.yml')))
    assert basicsr.utils.logger.initialized_logger == {}


def test_a_network_too_large_is_refused_when_read_without_allocating_it(tmp_path):
    """EDVR with num_feat: 100000 would hold 360 GB in one convolution: refused from the meta build, which stops at
    that convolution, in well under a second; reading changes no random state."""
    opt = load_options('baselines/test_edvr_synthetic.yml')
    opt['network_g']['num_feat'] = 100000
    path = write_options(tmp_path, opt)
    rng = torch.get_rng_state()
    started = time.perf_counter()
    with pytest.raises(OptionError, match=rf"^{path}: network_g: EDVR's parameters and buffers would take at least "
                       rf'335\.\d GiB, {LIMIT}'):
        read_options(path)
    assert time.perf_counter() - started < 10
    assert torch.equal(torch.get_rng_state(), rng)
    result = run_tool('test.py', '-opt', path)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: network_g: EDVR's parameters") and 'GiB' in lines[0]


def test_a_network_of_too_many_modules_is_refused_early():
    """A million blocks are refused once the build passes MAX_NETWORK_MODULES, not after building them."""
    with pytest.raises(OptionError, match=rf'network_g: ESTRNNNet would have at least {MAX_NETWORK_MODULES + 1} '
                       rf'modules, more than the {MAX_NETWORK_MODULES} a network may have \(MAX_NETWORK_MODULES'):
        measure_network({'type': 'ESTRNNNet', 'n_blocks': 1_000_000})


def test_the_networks_own_checks_run_when_the_options_are_read(tmp_path):
    opt = load_options('test_memdeblur_synthetic.yml')
    opt['network_g']['mid_channels'] = 0
    path = write_options(tmp_path, opt)
    with pytest.raises(OptionError, match=rf"^{path}: network_g: MemDeblurNet options: option 'mid_channels' must be "
                       r'an integer of at least 4, got 0\.$'):
        read_options(path)


class NeedsValues(nn.Module):
    """A network that reads a tensor's value while it is built (as BasicSR's SwinIR does): the meta device cannot
    build it."""

    def __init__(self, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(3, int(torch.tensor(channels).item()), 3)


def test_a_network_the_meta_device_cannot_build_is_left_to_its_real_build(tmp_path, monkeypatch):
    monkeypatch.setitem(ARCH_REGISTRY._obj_map, 'NeedsValues', NeedsValues)
    assert measure_network({'type': 'NeedsValues', 'channels': 4}) is None
    opt = load_options('test_memdeblur_synthetic.yml')
    opt['network_g'] = {'type': 'NeedsValues', 'channels': 4}
    assert read_options(write_options(tmp_path, opt))['network_g']['type'] == 'NeedsValues'
    assert build_network({'type': 'NeedsValues', 'channels': 4}).conv.out_channels == 4


@pytest.mark.parametrize('change, batch', [
    ({'gt_size': 1_000_000}, r'one batch \(2 clip\(s\) of 4 frame\(s\), 1000000x1000000 crops, blurry and sharp, '
                             r'float32\) would take 174\.6 TiB'),
    ({'batch_size_per_gpu': 10**9}, r'one batch \(1000000000 clip\(s\) of 4 frame\(s\), 64x64 crops'),
    ({'num_frame': 10**9}, r'one batch \(2 clip\(s\) of 1000000000 frame\(s\), 64x64 crops'),
])
def test_a_batch_too_large_is_refused_when_read(tmp_path, change, batch):
    opt = load_options('train_memdeblur_synthetic.yml')
    opt['datasets']['train'].update(batch_size_per_gpu=2, num_frame=4, gt_size=64)
    read_options(write_options(tmp_path, opt))  # 768 KiB a batch
    opt['datasets']['train'].update(change)
    path = write_options(tmp_path, opt)
    with pytest.raises(OptionError, match=rf'^{path}: datasets:train: {batch}.*{LIMIT}'):
        read_options(path)
