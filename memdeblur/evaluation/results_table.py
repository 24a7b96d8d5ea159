"""Per-frame scores -> per-sequence and overall tables, written as Markdown and CSV and summarised for the log.

The overall row averages over frames, as the released evaluation does (GOPRO: 1111 frames in
11 sequences of different lengths); the per-sequence rows average over each sequence's frames.
"""
import csv
import io
from collections import OrderedDict

import numpy as np

from memdeblur.utils.outputs import write_text_atomic

AVERAGE_ROW = 'average (all frames)'


def summarize(records, metric_names):
    """Aggregate per-frame scores.

    Args:
        records (list[dict]): One per frame: ``{'sequence': str, 'frame': str, 'output': {metric:
            value}, 'input': {metric: value}}``.
        metric_names (list[str]): Metrics, in column order.

    Returns:
        list[OrderedDict]: One row per sequence (in first-seen order) then the average row; keys
        ``sequence``, ``frames``, each metric, and ``<metric> (blurry input)``.
    """
    by_sequence = OrderedDict()
    for record in records:
        by_sequence.setdefault(record['sequence'], []).append(record)
    groups = list(by_sequence.items()) + [(AVERAGE_ROW, records)]
    rows = []
    for name, group in groups:
        row = OrderedDict(sequence=name, frames=len(group))
        for side, suffix in (('output', ''), ('input', ' (blurry input)')):
            for metric in metric_names:
                row[metric + suffix] = float(np.mean([r[side][metric] for r in group]))
        rows.append(row)
    return rows


def results_message(dataset_name, rows, metrics, best):
    """The log's summary of ``summarize`` rows: each metric over all frames with the blurry input's and the best
    so far (``best``: metric -> {'val', 'iter'}, BasicSR's record), then each sequence's scores."""
    average = rows[-1]
    message = f'Validation {dataset_name} ({average["frames"]} frames)\n'
    for metric in metrics:
        message += (f'\t # {metric}: {average[metric]:.4f} (blurry input {average[metric + " (blurry input)"]:.4f})'
                    f'\tBest: {best[metric]["val"]:.4f} @ {best[metric]["iter"]} iter\n')
    for row in rows[:-1]:
        message += f'\t   {row["sequence"]}: ' + ', '.join(f'{m} {row[m]:.4f}' for m in metrics) + '\n'
    return message


def write_csv(path, rows):
    """Write rows (dicts with the same keys) to ``path`` as a whole (``outputs.write_text_atomic``)."""
    text = io.StringIO(newline='')
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


def markdown_table(rows, precision=4):
    """Rows as a Markdown table; floats with ``precision`` decimals."""
    header = list(rows[0])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [f'{v:.{precision}f}' if isinstance(v, float) else str(v) for v in row.values()]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_markdown(path, title, rows, facts):
    """A Markdown report: title, the table, then ``facts`` (label -> value) as a list."""
    lines = [f'# {title}', '', markdown_table(rows), '']
    lines += [f'- {label}: {value}' for label, value in facts.items()]
    write_lines(path, lines)


def write_lines(path, lines):
    """Write ``lines`` (a Markdown report) to ``path`` as a whole, creating its folder."""
    write_text_atomic(path, '\n'.join(lines) + '\n')
