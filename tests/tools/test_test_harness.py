"""The test harness end to end: frames on disk -> BasicSR test pipeline -> PNGs, tables, metrics."""
import csv
import json

import cv2
import numpy as np
import pytest

from memdeblur.metrics.released_metric import calculate_psnr_released
from tests.pipeline_helpers import load_options, run_pipeline, write_options
from tools import convert_checkpoint

pytestmark = pytest.mark.slow


def write_fixture_as_sequence(vectors, root):
    """The authors' input as 16-bit PNG blurry frames; their eval output, rounded, as sharp frames."""
    seq = root / 'data' / 'FIXTURE'
    (seq / 'blur_gamma').mkdir(parents=True)
    (seq / 'sharp').mkdir()
    reference = vectors['outputs_eval'][-1][0]
    for t, (frame, ref) in enumerate(zip(vectors['input'][0], reference)):
        bgr16 = np.rint(frame.flip(0).permute(1, 2, 0).numpy() * 65535).astype(np.uint16)
        cv2.imwrite(str(seq / 'blur_gamma' / f'{t:06d}.png'), bgr16)
        cv2.imwrite(str(seq / 'sharp' / f'{t:06d}.png'), np.rint(ref.flip(0).permute(1, 2, 0).numpy() * 255).astype(
            np.uint8))
    return reference


@pytest.mark.parametrize('checkpoint_format', ['converted', 'original'])
def test_released_checkpoint_reproduces_the_fixture_through_the_harness(memdeblur_vectors,
                                                                         memdeblur_official_checkpoint, tmp_path,
                                                                         checkpoint_format):
    reference = write_fixture_as_sequence(memdeblur_vectors, tmp_path)
    weights = memdeblur_official_checkpoint
    if checkpoint_format == 'converted':
        weights = str(tmp_path / 'memdeblur_basicsr.pth')
        convert_checkpoint.main([memdeblur_official_checkpoint, weights])
    opt = load_options('test_memdeblur_gopro_ds.yml')
    opt['name'] = 'fixture'
    opt['num_gpu'] = 0
    opt['datasets']['test'].update(name='Fixture', dataroot=str(tmp_path / 'data'))
    opt['path']['pretrain_network_g'] = weights
    opt['val']['complexity']['num_frames'] = 8
    result = run_pipeline('test', tmp_path, write_options(tmp_path, opt))
    assert result.returncode == 0, result.stderr[-3000:]

    results = tmp_path / 'results' / 'fixture'
    saved = sorted((results / 'visualization' / 'Fixture' / 'FIXTURE').glob('*.png'))
    assert [p.stem for p in saved] == [f'{t:06d}' for t in range(7)]
    expected = np.rint(reference.permute(0, 2, 3, 1).numpy() * 255)
    restored = np.stack([cv2.imread(str(p))[..., ::-1] for p in saved]).astype(np.float64)
    # float32 on 16-bit-quantised input vs the authors' float64: at most one level, rarely
    assert np.abs(restored - expected).max() <= 1
    assert (restored == expected).mean() > 0.99

    with open(results / 'Fixture_metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['sequence'] for r in rows] == ['FIXTURE', 'average (all frames)'] and rows[-1]['frames'] == '7'
    sharp = [cv2.imread(str(p)) for p in sorted((tmp_path / 'data' / 'FIXTURE' / 'sharp').glob('*.png'))]
    blurry = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / 'data' / 'FIXTURE' / 'blur_gamma').glob(
        '*.png'))]
    blurry_truncated = [(b.astype(np.float64) / 65535 * 255).astype(np.uint8) for b in blurry]
    blurry_psnr = np.mean([calculate_psnr_released(b, s) for b, s in zip(blurry_truncated, sharp)])
    assert float(rows[-1]['psnr_released (blurry input)']) == pytest.approx(blurry_psnr, abs=1e-6)
    assert float(rows[-1]['psnr']) > 55 and float(rows[-1]['ssim_released']) > 0.999

    report = (results / 'Fixture_metrics.md').read_text()
    assert '| FIXTURE | 7 |' in report
    assert 'parameters: 6.989 M' in report and 'GMACs per frame at 720x1280: 325.02' in report
    assert list((results / 'visualization' / 'Fixture').glob('FIXTURE_comparison_000003.png'))
    with open(results / 'Fixture_summary.csv') as f:
        summary = {row['item']: row['value'] for row in csv.DictReader(f)}
    assert summary['parameters'] == '6.989 M' and summary['frames scored'] == '7'
    assert summary['GMACs per frame at 720x1280'].startswith('325.02')
    structured = json.loads((results / 'Fixture_results.json').read_text())  # what tools and scripts read
    assert structured['frames_scored'] == 7 and structured['network'] == 'MemDeblurNet'
    assert structured['average']['psnr'] == pytest.approx(float(rows[-1]['psnr']))
    assert structured['blurry_input_average']['psnr_released'] == pytest.approx(blurry_psnr, abs=1e-6)
    assert [s['sequence'] for s in structured['sequences']] == ['FIXTURE']
    assert round(structured['parameters'] / 1e6, 3) == 6.989
    assert structured['complexity_size'] == [720, 1280, 8] and structured['seconds_per_frame'] > 0


def test_wrong_checkpoint_stops_the_harness_with_the_differences(estrnn_official_checkpoint, synthetic_gopro,
                                                                 tmp_path):
    opt = load_options('test_memdeblur_gopro_ds.yml')
    opt['num_gpu'] = 0
    opt['datasets']['test']['dataroot'] = str(synthetic_gopro / 'test')
    opt['path']['pretrain_network_g'] = estrnn_official_checkpoint
    result = run_pipeline('test', tmp_path, write_options(tmp_path, opt))
    assert result.returncode != 0
    assert 'estrnn_official_format.pth.tar' in result.stderr and 'does not fit this MemDeblurNet' in result.stderr
