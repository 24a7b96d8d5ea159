"""The results of one test run, written for people (Markdown), for spreadsheets (CSV) and for tools (JSON).

``measure_facts`` gathers what the run measured besides the scores (``RunFacts``: size, cost, speed, memory, and how
the border frames were treated, ``border_convention``); ``write_run_report`` writes, for ``<results>/<dataset>``:

* ``<dataset>_metrics.md``: the per-sequence and frame-averaged table, then the run's facts;
* ``<dataset>_metrics.csv``: the same table; ``<dataset>_summary.csv``: the facts as label, value rows;
* ``<dataset>_results.json``: everything as numbers and names (``read_run_report`` reads it): what
  ``tools/compare.py``, ``tools/demo.py`` and the benchmarks read, never the tables' labels; strict JSON, an
  infinite PSNR written ``"inf"`` (``memdeblur.utils.outputs.strict_json``).
"""
import json
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from memdeblur.evaluation.complexity import network_complexity
from memdeblur.evaluation.results_table import write_csv, write_markdown
from memdeblur.utils.outputs import numbers_from_json, write_json_atomic
from memdeblur.utils.peak_memory import peak_memory_mib

CONVENTIONS = ('psnr/ssim: BasicSR (rounded to uint8); *_released: truncated to uint8, scikit-image SSIM; averages '
               'over all frames')
BLURRY_SUFFIX = ' (blurry input)'


@dataclass
class RunFacts:
    """What a test run measured besides the scores.

    Attributes:
        network (str): The network's class name.
        weights (str | None): The checkpoint tested.
        parameters (int): Parameter count.
        gmacs_authors (float): GMACs per frame in the authors' convention (thop module hooks).
        gmacs_exact (float): GMACs per frame counted exactly (``torch.utils.flop_counter``).
        gmacs_attention (float): The attention's share of ``gmacs_exact``.
        complexity_size (list[int]): [height, width, frames] the GMACs are counted at.
        seconds_per_frame (float): Forward-pass time per frame at the test frame size.
        device (str): Where it ran, e.g. ``CPU, 2 threads``.
        peak_memory_mib (float): Peak memory of the process.
        peak_memory_kind (str): What ``peak_memory_mib`` measures.
        border_frames (str): How the first and last frames of each sequence were restored and scored.
    """

    network: str
    weights: Optional[str]
    parameters: int
    gmacs_authors: float
    gmacs_exact: float
    gmacs_attention: float
    complexity_size: list
    seconds_per_frame: float
    device: str
    peak_memory_mib: float
    peak_memory_kind: str
    border_frames: str

    def labelled(self, frames_scored):
        """The facts as the Markdown report and the summary CSV list them (label -> text)."""
        height, width, num_frames = self.complexity_size
        return {
            'model': self.network,
            'weights': self.weights,
            'frames scored': frames_scored,
            'parameters': f'{self.parameters / 1e6:.3f} M',
            f'GMACs per frame at {height}x{width}': f'{self.gmacs_authors:.2f} (thop module hooks, T={num_frames})',
            'GMACs per frame, exact': f'{self.gmacs_exact:.2f} (torch.utils.flop_counter; attention '
                                      f'{self.gmacs_attention:.2f})',
            'runtime per frame': f'{self.seconds_per_frame:.4f} s at the test frame size ({self.device})',
            'peak memory': f'{self.peak_memory_mib:.0f} MiB ({self.peak_memory_kind})',
            'border frames': self.border_frames,
            'conventions': CONVENTIONS,
        }


def border_convention(margins, border_frames):
    """How the first and last frames of each sequence are restored and scored, in words, for a network with frame
    ``margins`` (first, last) tested with ``val.border_frames`` (``reflect`` or ``inner``)."""
    first, last = margins
    if not (first or last):
        return 'every frame restored from the sequence itself'
    if border_frames == 'reflect':
        return (f'every frame scored; the first {first} and last {last} restored from the sequence extended by '
                'reflection')
    return f'inner frames only: the first {first} and last {last} of each window not scored'


def measure_facts(net, padding, device, complexity, seconds_per_frame, weights, border_frames):
    """The ``RunFacts`` of a test of ``net`` that ran at ``seconds_per_frame`` on ``device``: its complexity at the
    ``val.complexity`` size (``height``, ``width``, ``num_frames``; default 720x1280, 100 frames) padded as it runs
    (``padding``), and the process's peak memory so far."""
    height, width = complexity.get('height', 720), complexity.get('width', 1280)
    num_frames = complexity.get('num_frames', 100)
    cost = network_complexity(net, *padding.target(height, width), num_frames)
    memory, memory_kind = peak_memory_mib(device)
    return RunFacts(
        network=type(net).__name__, weights=weights, parameters=cost.parameters, gmacs_authors=cost.thop_gmacs,
        gmacs_exact=cost.exact_gmacs, gmacs_attention=cost.attention_gmacs, complexity_size=[height, width, num_frames],
        seconds_per_frame=seconds_per_frame,
        device=torch.cuda.get_device_name() if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads',
        peak_memory_mib=memory, peak_memory_kind=memory_kind, border_frames=border_frames)


def scores_of(row, metrics):
    """(output scores, blurry input scores) of one ``summarize`` row."""
    return {m: row[m] for m in metrics}, {m: row[m + BLURRY_SUFFIX] for m in metrics}


def structured_results(name, dataset, rows, metrics, facts):
    """The JSON document of a run: scores per sequence and over all frames, and the facts."""
    sequences = []
    for row in rows[:-1]:
        output, blurry = scores_of(row, metrics)
        sequences.append({'sequence': row['sequence'], 'frames': row['frames'], 'output': output,
                          'blurry_input': blurry})
    output, blurry = scores_of(rows[-1], metrics)
    return {'name': name, 'dataset': dataset, 'frames_scored': rows[-1]['frames'], 'average': output,
            'blurry_input_average': blurry, 'sequences': sequences, 'conventions': CONVENTIONS, **asdict(facts)}


def write_run_report(base, name, dataset, rows, metrics, facts):
    """Write the Markdown, CSV and JSON results of a run to ``base`` + ``_metrics.md`` etc. (each file whole).

    Args:
        base (str): ``<results folder>/<dataset>``.
        name (str): The run's name (its options file's ``name``).
        dataset (str): The test set's name.
        rows (list[dict]): ``results_table.summarize`` rows, the average row last.
        metrics (list[str]): The metric names, in column order.
        facts (RunFacts): What the run measured besides the scores.

    Returns:
        list[str]: The files written.
    """
    labelled = facts.labelled(rows[-1]['frames'])
    write_csv(base + '_metrics.csv', rows)
    write_csv(base + '_summary.csv', [{'item': label, 'value': value} for label, value in labelled.items()])
    write_markdown(base + '_metrics.md', f'{name} on {dataset}', rows, labelled)
    write_json_atomic(base + '_results.json', structured_results(name, dataset, rows, metrics, facts))
    return [base + suffix for suffix in ('_metrics.md', '_metrics.csv', '_summary.csv', '_results.json')]


def read_run_report(base):
    """The JSON results ``write_run_report`` wrote for ``base`` (``<results folder>/<dataset>``).

    Raises:
        FileNotFoundError: naming the file when the run wrote none.
    """
    path = base + '_results.json'
    try:
        with open(path) as f:
            return numbers_from_json(json.load(f))
    except FileNotFoundError as err:
        raise FileNotFoundError(f'No test results at {path}: the test run did not finish.') from err
