"""Shared test fixtures: the authors' test vectors and small, fast network configurations.

The vectors live in ``../shared/fixtures`` beside the checkout (override with
MEMDEBLUR_FIXTURES_ROOT). A missing folder is an error, not a skip: these tests are the proof that
the released models are reproduced.
"""
import logging
import os
import os.path as osp

import pytest
import torch
import yaml
from torch import nn

# The tests compare outputs bit for bit within and across processes: they run at PyTorch's own thread count, fixed
# (an explicit setting: memdeblur.utils.threads never changes it), not adapted to a machine busy with other tests.
# tests/utils/test_threads.py checks the adaptation itself, with a clock it drives.
os.environ.setdefault('OMP_NUM_THREADS', str(torch.get_num_threads()))

import memdeblur  # noqa: F401,I001  (first: makes basicsr importable, registers everything)
from basicsr.utils.registry import ARCH_REGISTRY  # noqa: I001

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_FIXTURES = osp.normpath(os.environ.get('MEMDEBLUR_FIXTURES_ROOT', osp.join(REPO_ROOT, '..', 'shared',
                                                                                  'fixtures')))

# A MemDeblurNet small enough for many quick forward passes; every code path stays in use.
TINY_MEMDEBLUR = dict(mid_channels=16, num_blocks_forward=2, num_blocks_backward=1)


def fixture_path(*parts):
    path = osp.join(SHARED_FIXTURES, *parts)
    if not osp.exists(path):
        pytest.fail(f'Test vectors {path} are missing: clone next to the shared/ folder or set '
                    'MEMDEBLUR_FIXTURES_ROOT.')
    return path


@pytest.fixture(scope='session')
def memdeblur_official_checkpoint():
    return fixture_path('official_memdeblur', 'memdeblur_official_format.pth.tar')


@pytest.fixture(scope='session')
def memdeblur_vectors():
    return torch.load(fixture_path('official_memdeblur', 'io.pt'), map_location='cpu', weights_only=True)


@pytest.fixture(scope='session')
def estrnn_official_checkpoint():
    return fixture_path('official_estrnn', 'estrnn_official_format.pth.tar')


@pytest.fixture(scope='session')
def synthetic_gopro(tmp_path_factory):
    """A tiny synthetic GOPRO_Large-layout set: train 2 x 8 frames, test 1 x 8 frames, 64x96."""
    from memdeblur.data.synthetic import write_synthetic_gopro
    root = tmp_path_factory.mktemp('synthetic') / 'GOPRO'
    write_synthetic_gopro(str(root), {'train': 2, 'test': 1}, num_frames=8, height=64, width=96, seed=1,
                          progress=False)
    return root


@pytest.fixture
def basicsr_log():
    """Records what is logged to BasicSR's logger (which does not propagate to pytest's caplog)."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger('basicsr').addHandler(handler)
    yield records
    logging.getLogger('basicsr').removeHandler(handler)


@ARCH_REGISTRY.register()
class IdentityTestNet(nn.Module):
    """Returns its input: a whole-clip network whose output is known (video tool tests)."""

    def forward(self, lqs):
        return lqs.clone()


@pytest.fixture
def identity_options(tmp_path):
    """Test options of ``IdentityTestNet``, with an empty checkpoint."""
    weights = tmp_path / 'identity.pth'
    torch.save({'params': {}}, weights)
    path = tmp_path / 'identity.yml'
    path.write_text(yaml.safe_dump({'name': 'identity', 'network_g': {'type': 'IdentityTestNet'},
                                    'path': {'pretrain_network_g': str(weights)}}))
    return str(path)
