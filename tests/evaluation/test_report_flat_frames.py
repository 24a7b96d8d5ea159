"""--report survives frames NIQE cannot score: black, constant and tiny frames get NaN, the run goes on, the CSV
holds the NaN, the means leave it out and the plot shows a gap."""
import csv
import math

import av
import cv2
import numpy as np

from memdeblur.evaluation.no_reference import FootageReport
from tests.media.test_video_streams import deblur


def opening_on_black(path, size=(192, 208)):
    """Two black frames, one mid-grey, then three of texture: a clip as a camera starts recording."""
    rng = np.random.default_rng(0)
    frames = [np.zeros((*size, 3), np.uint8)] * 2 + [np.full((*size, 3), 128, np.uint8)] + [
        rng.integers(0, 256, (*size, 3)).astype(np.uint8) for _ in range(3)]
    with av.open(str(path), 'w') as out:
        stream = out.add_stream('libx264', rate=25)
        stream.height, stream.width = size
        stream.pix_fmt, stream.options = 'yuv444p', {'qp': '0'}
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_a_clip_opening_on_black_frames_is_reported(identity_options, tmp_path):  # noqa: F811
    source = tmp_path / 'black.mp4'
    opening_on_black(source)
    result = deblur(source, '-o', tmp_path / 'out.mp4', '--opt', identity_options, '--report')
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / 'out_report.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    niqe = [float(row['niqe_input']) for row in rows]
    assert all(math.isnan(value) for value in niqe[:3]) and all(value > 0 for value in niqe[3:])
    assert [float(row['sharpness_input']) for row in rows[:3]] == [0, 0, 0]
    plot = cv2.imread(str(tmp_path / 'out_report.png'))
    assert plot is not None and plot.shape[0] > 300


def test_flat_and_tiny_frames_score_nan_and_the_means_leave_them_out(tmp_path):
    report = FootageReport()
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (192, 192, 3)).astype(np.uint8)
    for image in (np.full((192, 192, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8),
                  np.zeros((2, 3, 3), np.uint16), texture):
        report.add(len(report.rows) / 25, image, image)
    assert [math.isnan(row['niqe_output']) for row in report.rows] == [True, True, True, False]
    means = report.means()
    assert means['niqe_input'] == report.rows[-1]['niqe_input'] and means['niqe_input'] > 0
    report.write(str(tmp_path / 'r.csv'), str(tmp_path / 'r.png'), 'flat')
    assert (tmp_path / 'r.csv').read_text().count('nan') == 6 and (tmp_path / 'r.png').stat().st_size > 0
