"""Complexity counts: the authors' convention and the exact count, the tool, and the paper's figures."""

import pytest

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.evaluation.complexity import measure_complexity
from tests.conftest import TINY_MEMDEBLUR
from tests.pipeline_helpers import run_tool
from tests.archs.test_paper_variants import ROWS


def test_exact_count_adds_the_attention_that_module_hooks_miss():
    cost = measure_complexity(MemDeblurNet(**TINY_MEMDEBLUR), 128, 192, 6)
    assert cost.attention_gmacs > 0 and 0 < cost.attention_share < 1
    no_memory = measure_complexity(MemDeblurNet(**TINY_MEMDEBLUR, use_memory=False), 128, 192, 6)
    assert no_memory.attention_gmacs == 0
    assert no_memory.thop_gmacs < cost.thop_gmacs and no_memory.parameters < cost.parameters
    # convolutions alone (exact minus attention) are close to thop's module count, which adds
    # normalisation/activation modules and misses nothing else of weight here
    assert cost.exact_gmacs - cost.attention_gmacs == pytest.approx(cost.thop_gmacs, rel=0.1)


def test_tool_counts_one_file_and_writes_the_table_of_all(tmp_path):
    one = run_tool('complexity.py', '-opt', 'options/paper/train_table1_slim.yml', '--size', '64x96', '--frames', '4',
                   '--run', 'cpu', '--run-frames', '2')
    assert one.returncode == 0, one.stderr
    assert '5.620 M parameters' in one.stdout and 'authors\' convention' in one.stdout
    assert 'ms per frame, peak memory' in one.stdout
    out = tmp_path / 'table.md'
    every = run_tool('complexity.py', '--all', '--size', '64x96', '--frames', '4', '--out', out)
    assert every.returncode == 0, every.stderr
    table = out.read_text()
    for row in ROWS:
        assert f'| `options/paper/{{train,test}}_{row}.yml` |' in table
    assert '| `options/{train,test}_memdeblur_synthetic.yml` | 2.277 |' in table
    assert '| `options/{train,test}_memdeblur_gopro_ds.yml` | 6.989 |' in table and '| 325.48 | 31.77 |' in table
    no_network = tmp_path / 'data_only.yml'
    no_network.write_text('name: x\ndatasets: {}\n')
    bad = run_tool('complexity.py', '-opt', no_network)
    assert bad.returncode != 0 and 'data_only.yml has no network_g section' in bad.stderr


@pytest.mark.slow
def test_paper_figures_at_720p_over_100_frames():
    """Released within 1% of the authors' 325.48; Slim and Table 7 a constant 14.9 GMACs (one redundant
    full-resolution pass of D) below the paper's 197.34 / 201.10 / 218.79 (options/README.md)."""
    assert measure_complexity(MemDeblurNet(), exact=False).thop_gmacs == pytest.approx(325.48, rel=0.01)
    slim = dict(bidirectional=False, scales=[1])
    gaps = [paper - measure_complexity(MemDeblurNet(**slim, mem_every=[period]), exact=False).thop_gmacs
            for period, paper in ((5, 197.34), (3, 201.10), (1, 218.79))]
    assert gaps == pytest.approx([14.9] * 3, abs=0.1)
