"""How restored footage compares with its input when there is no ground truth: a report per video.

Two figures per frame, for the input and for the output:

* edge sharpness, the variance of the Laplacian (``comparison_image.edge_sharpness``): higher means sharper
  edges, but ringing and noise raise it too;
* NIQE (BasicSR's ``calculate_niqe``, with its bundled parameters of pristine images, on the Y channel): lower
  means more natural; it needs frames of at least ``NIQE_MIN_SIDE`` pixels a side, and frames with texture: it is
  NaN for smaller frames and for black, constant or nearly flat ones (which its statistics cannot describe).

A NaN is recorded as it is: the CSV holds ``nan``, the means leave it out, the plot shows a gap.

``FootageReport`` collects them while a video is written and writes a CSV (one row per frame) and a PNG plot of
both over time, so a user sees where the network helped and where it did not.
"""
import csv
import io
import math
import warnings

import numpy as np
from basicsr.metrics.niqe import calculate_niqe

from memdeblur.media.images import to_8_bits
from memdeblur.evaluation.comparison_image import edge_sharpness
from memdeblur.utils.outputs import atomic_file, write_text_atomic

NIQE_MIN_SIDE = 192  # two scales of 96x96 blocks


def niqe(rgb):
    """NIQE of an (H, W, 3) uint8 RGB frame; NaN for frames too small for its blocks, and for frames whose
    statistics it cannot fit (black or constant frames: its covariance is singular, numpy's SVD does not converge)."""
    if min(rgb.shape[:2]) < NIQE_MIN_SIDE:
        return math.nan
    with np.errstate(all='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # empty or constant blocks: NaN means, flagged below
        try:
            score = float(calculate_niqe(np.ascontiguousarray(rgb[..., ::-1]), crop_border=0))
        except (np.linalg.LinAlgError, ValueError):
            return math.nan
    return score if math.isfinite(score) else math.nan


class FootageReport:
    """Per-frame edge sharpness (and NIQE) of input and output frames of one video.

    Args:
        with_niqe (bool): Also compute NIQE (seconds per large frame).
    """

    COLUMNS = ('frame', 'time_s', 'sharpness_input', 'sharpness_output', 'niqe_input', 'niqe_output')

    def __init__(self, with_niqe=True):
        self.with_niqe = with_niqe
        self.rows = []

    def add(self, time, original, restored):
        """Score one frame: ``original`` and ``restored`` (H, W, 3) RGB (uint8, or uint16 scored at 8 bits), shown at
        ``time`` seconds; the figures are on the scale of 8-bit images."""
        original, restored = (to_8_bits(image) for image in (original, restored))
        row = {'frame': len(self.rows), 'time_s': time,
               'sharpness_input': edge_sharpness(original[..., ::-1]),
               'sharpness_output': edge_sharpness(restored[..., ::-1]),
               'niqe_input': niqe(original) if self.with_niqe else math.nan,
               'niqe_output': niqe(restored) if self.with_niqe else math.nan}
        self.rows.append(row)

    def means(self):
        """The mean of every figure over the frames (NaN where it was not computed)."""
        means = {}
        for column in self.COLUMNS[2:]:
            values = [row[column] for row in self.rows if not math.isnan(row[column])]
            means[column] = float(np.mean(values)) if values else math.nan
        return means

    def write(self, csv_path, plot_path, title):
        """The CSV (one row per frame) and the plot (PNG), each written whole."""
        text = io.StringIO(newline='')
        writer = csv.DictWriter(text, fieldnames=self.COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(csv_path, text.getvalue())
        with atomic_file(plot_path) as tmp:
            self._plot(tmp, title)

    def _plot(self, path, title):
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot as plt

        times = [row['time_s'] for row in self.rows]
        panels = [('sharpness', 'edge sharpness', 'variance of the Laplacian: higher is sharper (noise raises it too)')]
        if self.with_niqe and not all(math.isnan(row['niqe_input']) for row in self.rows):
            panels.append(('niqe', 'NIQE', 'lower is more natural'))
        figure, axes = plt.subplots(len(panels), 1, figsize=(9, 3 * len(panels)), sharex=True, squeeze=False)
        for axis, (key, label, meaning) in zip(axes[:, 0], panels):
            axis.plot(times, [row[f'{key}_input'] for row in self.rows], '.-', label='input', color='tab:gray')
            axis.plot(times, [row[f'{key}_output'] for row in self.rows], '.-', label='deblurred', color='tab:blue')
            axis.set_ylabel(label)
            axis.set_title(meaning, fontsize=8, loc='left')
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        axes[-1, 0].set_xlabel('time (s)')
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        figure.savefig(path, format='png', dpi=100)
        plt.close(figure)
