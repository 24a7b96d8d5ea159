"""Decoding every frame of every data set of an options file and listing every problem found.

Building a dataset checks what it can without decoding frames (names, counts, headers, sizes,
LMDB keys) and stops at the first problem; a truncated PNG, a transparent frame or a corrupt
LMDB value is only found when training or testing reaches it, hours in. ``check_datasets``
decodes everything up front and collects every problem, so one run lists them all.
"""
import functools
from dataclasses import dataclass, field

from tqdm import tqdm

from memdeblur.utils.errors import DataError
from memdeblur.media.images import read_frame
from memdeblur.data.video_deblur_dataset import VideoDeblurDataset, clip_problems
from memdeblur.data.video_deblur_test_dataset import VideoDeblurTestDataset
from memdeblur.data.video_sources import FolderVideoSource, build_video_source
from memdeblur.utils.option_check import OptionError

DATASET_TYPES = {'VideoDeblurDataset': VideoDeblurDataset, 'VideoDeblurTestDataset': VideoDeblurTestDataset}


@dataclass
class DatasetReport:
    """What checking one dataset of an options file found."""

    phase: str
    dataroot: str
    sequences: int = 0
    frames: int = 0
    problems: list = field(default_factory=list)


def check_dataset(phase, opt, progress=True):
    """Check one dataset's options, structure and every frame; never raises for bad data.

    Args:
        phase (str): The key under ``datasets`` (``train``, ``val``, ``test``...).
        opt (dict): That dataset's options.
        progress (bool): Show a progress bar over the frames.

    Returns:
        DatasetReport
    """
    report = DatasetReport(phase, str(opt.get('dataroot')))
    dataset_type = opt.get('type')
    if dataset_type not in DATASET_TYPES:
        report.problems.append(f'type {dataset_type!r} is not a dataset of this project '
                               f'({", ".join(DATASET_TYPES)}); not checked.')
        return report
    try:
        DATASET_TYPES[dataset_type].check_options({'phase': phase, **opt})
        source = build_video_source(opt, on_error=lambda err: report.problems.append(str(err)))
    except (DataError, OptionError) as err:
        report.problems.append(str(err))
        return report
    if dataset_type == 'VideoDeblurDataset':
        report.problems += clip_problems(source.sequences, opt)
    report.sequences = len(source.sequences)
    report.frames = sum(len(seq) for seq in source.sequences)
    with tqdm(total=report.frames, desc=f'Decoding {phase}', unit='frame', disable=not progress) as bar:
        for seq_idx, seq in enumerate(source.sequences):
            for frame_idx in range(len(seq)):
                report.problems += _frame_problems(source, seq_idx, frame_idx)
                bar.update()
    return report


def _frame_problems(source, seq_idx, frame_idx):
    """Decode one blurry/sharp pair; each side's problem separately where the source allows it."""
    if isinstance(source, FolderVideoSource):
        readers = [functools.partial(read_frame, path) for path in source.frame_paths(seq_idx, frame_idx)]
    else:
        readers = [functools.partial(source.read, seq_idx, frame_idx)]
    problems = []
    for read in readers:
        try:
            read()
        except DataError as err:
            problems.append(str(err))
    return problems


def check_datasets(opt, progress=True):
    """Check every dataset of a parsed options file.

    Returns:
        list[DatasetReport]: One per entry of ``opt['datasets']``.
    """
    datasets = opt.get('datasets') or {}
    if not datasets:
        raise OptionError('The options file has no datasets section.')
    return [check_dataset(phase, dataset_opt, progress) for phase, dataset_opt in datasets.items()]
