"""Every file a deblurring run writes, planned and checked before any work starts.

A run over one video or a folder of sequences writes, per sequence, the restored output (a video or a folder of PNG
frames; each keeps a record of the input and settings that made it, ``run_record``, which ``--resume`` compares)
and, with ``--report``, a CSV and a plot beside it; once per run, with ``--summary``, a JSON file. ``plan_run``
lists them all first and refuses, naming both, any two that are the same file, a file planned inside a planned
folder, two input sequences (or two frames of one folder, ``000003.png`` and ``000003.jpg``) that would be written
to one name, and (``memdeblur.utils.outputs``) any output that is, holds or lies in an input, or that exists without
``--force``.
"""
import hashlib
import json
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Tuple

from memdeblur.utils.errors import DataError
from memdeblur.media.images import list_frame_files
from memdeblur.media.inputs import VideoInput
from memdeblur.media.video_encoding import output_container
from memdeblur.media.video_files import is_video_name
from memdeblur.media.writers import read_record
from memdeblur.utils.outputs import OutputError, check_outputs


@dataclass
class SequencePlan:
    """What one input sequence becomes: its output and, with ``--report``, the report's (CSV, plot)."""

    seq: VideoInput
    output: str
    report: Optional[Tuple[str, str]] = None

    @property
    def files(self):
        """(path, is a folder, what it is) of everything written for this sequence."""
        yield self.output, not is_video_name(self.output), f'the output of {self.seq.path}'
        for path, what in zip(self.report or (), ('report CSV', 'report plot')):
            yield path, False, f'the {what} of {self.seq.path}'


def output_paths(inputs, output, kind, name=str):
    """The output path of every input sequence: ``output`` for one, ``output/<name>[.mp4]`` for several.

    Args:
        inputs (list[VideoInput]): The sequences.
        output (str): A video file name or a folder.
        kind (str): ``auto`` (mp4 when ``output`` has a video extension, else PNG frames), ``mp4`` or ``png``.
        name (callable): How messages spell a setting (the tool: its flag).
    """
    if kind == 'auto':
        kind = 'mp4' if is_video_name(output) else 'png'
    elif kind == 'png' and is_video_name(output):
        raise DataError(f'{name("format")} png writes a folder of frames, but {output} is named like a video file; '
                        f'name a folder, or drop {name("format")} png for a video.')
    if len(inputs) == 1:
        if kind == 'mp4' and not is_video_name(output):
            return [output + '.mp4']
        return [output]
    if is_video_name(output):
        raise DataError(f'{len(inputs)} input sequences need an output folder, not {output}.')
    return [osp.join(output, seq.name + ('.mp4' if kind == 'mp4' else '')) for seq in inputs]


def report_paths(out_path):
    """(CSV, PNG) of the no-ground-truth report of an output video or frame folder, beside it."""
    stem = osp.splitext(out_path)[0] if is_video_name(out_path) else osp.normpath(out_path)
    return stem + '_report.csv', stem + '_report.png'


def output_frame_names(seq):
    """The names of a frame folder's frames (the output keeps them); None for a video file.

    Raises:
        DataError: naming both files when two frames share a name (``3.png`` and ``3.jpg``), which would be
            written to one PNG.
    """
    if seq.is_video_file:
        return None
    files = list_frame_files(seq.path)
    stems = {}
    for name in files:
        stem = osp.splitext(name)[0]
        if stem in stems:
            raise DataError(f'{osp.join(seq.path, stems[stem])} and {osp.join(seq.path, name)} would both be written '
                            f'as {stem}.png; rename one, or write a video.')
        stems[stem] = name
    return [osp.splitext(f)[0] for f in files]


def plan_run(inputs, output, kind, report=False, summary=None, name=str):
    """Plan every file of a run and refuse collisions among them, before anything is loaded or written.

    Args:
        inputs (list[VideoInput]): The input sequences.
        output (str): A video file name or a folder.
        kind (str): ``format`` (``output_paths``).
        report (bool): A CSV and a plot beside each output.
        summary (str | None): The run's JSON summary.
        name (callable): How messages spell a setting (the tool: its flag).

    Returns:
        list[SequencePlan]: One per input sequence, in order.

    Raises:
        DataError / OutputError: naming both parties of a collision.
    """
    plans = [SequencePlan(seq, out, report_paths(out) if report else None)
             for seq, out in zip(inputs, output_paths(inputs, output, kind, name))]
    planned = [file for plan in plans for file in plan.files]
    if summary:
        planned.append((summary, False, name('summary')))
    seen, folders = {}, {}
    for path, is_folder, what in planned:
        real = osp.realpath(path)
        if real in seen:
            raise OutputError(f'{path} would be both {seen[real][1]} and {what}; name them apart.')
        seen[real] = (path, what)
        if is_folder:
            folders[real] = (path, what)
    for real, (path, what) in seen.items():
        parent = osp.dirname(real)
        while parent != osp.dirname(parent):
            if parent in folders:
                folder, folder_what = folders[parent]
                raise OutputError(f'{path} ({what}) would lie inside {folder} ({folder_what}), which is written whole; '
                                  'name it outside.')
            parent = osp.dirname(parent)
    for plan in plans:
        if is_video_name(plan.output):
            output_container(plan.output)  # a name we cannot write is refused here, before the network is loaded
        else:
            output_frame_names(plan.seq)
    return plans


def check_planned(plans, summary, read_paths, overwrite):
    """Refuse planned files that are, hold or lie in what the run reads, or exist (without ``overwrite``)."""
    files = [path for plan in plans for path, is_folder, _ in plan.files if not is_folder] + ([summary] if summary
                                                                                              else [])
    folders = [path for plan in plans for path, is_folder, _ in plan.files if is_folder]
    check_outputs(files=files, folders=folders, overwrite=overwrite, inputs=read_paths)


def input_fingerprint(seq):
    """What identifies an input's content cheaply: a video's size and its first and last MiB, a frame folder's
    frame names and sizes."""
    digest = hashlib.sha256()
    if seq.is_video_file:
        size = osp.getsize(seq.path)
        digest.update(str(size).encode())
        with open(seq.path, 'rb') as f:
            digest.update(f.read(1 << 20))
            f.seek(max(size - (1 << 20), 0))
            digest.update(f.read())
    else:
        for name in list_frame_files(seq.path):
            digest.update(f'{name}\0{osp.getsize(osp.join(seq.path, name))}\0'.encode())
    return digest.hexdigest()


def run_record(seq, settings):
    """The record an output keeps of what made it (its writer's ``record``, ``memdeblur.media.writers``): the
    tool, the input's fingerprint and ``settings`` (names -> plain values)."""
    return json.dumps({'written_by': 'tools/deblur_video.py', 'input': input_fingerprint(seq), 'settings': settings},
                      sort_keys=True)


def resume_mismatch(output, seq, settings):
    """Why ``output`` (which exists) cannot be kept by ``--resume`` with ``settings``: None when it was made from
    this input with the same settings, else the differences in words."""
    try:
        record = json.loads(read_record(output) or 'null')
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get('settings'), dict):
        return 'no record of the settings it was made with (made by an older version, or not by this tool)'
    differences = [key for key in sorted(set(settings) | set(record['settings']))
                   if settings.get(key) != record['settings'].get(key)]
    if record.get('input') != input_fingerprint(seq):
        differences.insert(0, 'the input changed')
    return ', '.join(differences) or None
