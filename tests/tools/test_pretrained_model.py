"""The shipped synthetic-data model reproduces its published numbers through tools/test.py's pipeline."""
import csv
import hashlib
import json
import os.path as osp

import pytest

from memdeblur.data.synthetic import SyntheticSettings, write_synthetic_gopro
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import load_options, run_pipeline, write_options

PRETRAINED = osp.join(REPO_ROOT, 'pretrained')


def published():
    with open(osp.join(PRETRAINED, 'memdeblur_synthetic.json')) as f:
        return json.load(f)


def test_shipped_model_is_small_and_its_numbers_are_in_the_readmes():
    weights = osp.join(PRETRAINED, 'memdeblur_synthetic.pth')
    assert osp.getsize(weights) < 10 * 2**20
    with open(weights, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == published()['sha256']  # the file that was measured
    numbers = published()['test']
    for readme in (osp.join(PRETRAINED, 'README.md'), osp.join(REPO_ROOT, 'README.md')):
        with open(readme) as f:
            text = f.read()
        for key in ('psnr', 'psnr (blurry input)'):
            assert f'{numbers[key]:.2f} dB' in text, (readme, key)


@pytest.mark.slow
def test_shipped_model_reproduces_its_numbers(tmp_path):
    defaults = SyntheticSettings()
    data = tmp_path / 'synthetic_gopro'
    write_synthetic_gopro(str(data), defaults.splits, defaults.num_frames, defaults.height, defaults.width,
                          defaults.subframes, defaults.seed, progress=False)
    opt = load_options('test_memdeblur_synthetic_pretrained.yml')
    opt['datasets']['test']['dataroot'] = str(data / 'test')
    opt['path']['pretrain_network_g'] = osp.join(PRETRAINED, 'memdeblur_synthetic.pth')
    opt['num_gpu'] = 0
    result = run_pipeline('test', tmp_path, write_options(tmp_path, opt))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / 'results' / opt['name'] / 'SyntheticGOPRO_test_metrics.csv') as f:
        average = list(csv.DictReader(f))[-1]
    for key, value in published()['test'].items():
        assert float(average[key]) == pytest.approx(value, abs=0.01), key
