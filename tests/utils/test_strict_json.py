"""What tools read is strict JSON: an infinite PSNR (identical frames) or a NaN NIQE (a black frame) is written as a
string a strict parser takes, and read back as the number."""
import json
import math

import pytest

from memdeblur.evaluation.run_report import read_run_report
from memdeblur.utils.outputs import write_json_atomic


def strict_parse(text):
    def refuse(constant):
        raise ValueError(f'not JSON: {constant}')

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_strict_json_and_read_back(tmp_path):
    results = {'average': {'psnr': float('inf'), 'ssim': 1.0}, 'rows': [{'niqe': float('nan'), 'x': -math.inf}],
               'name': 'inf is a name here'}
    path = tmp_path / 'GOPRO_results.json'
    write_json_atomic(str(path), results)
    parsed = strict_parse(path.read_text())
    assert parsed['average']['psnr'] == 'inf' and parsed['rows'][0]['niqe'] == 'nan'
    back = read_run_report(str(tmp_path / 'GOPRO'))
    assert back['average']['psnr'] == math.inf and back['rows'][0]['x'] == -math.inf
    assert math.isnan(back['rows'][0]['niqe']) and back['name'] == 'inf is a name here'
    with pytest.raises(ValueError):
        strict_parse('{"psnr": Infinity}')  # what was written before
