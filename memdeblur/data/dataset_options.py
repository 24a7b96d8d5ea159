"""The options every dataset of this project accepts, checked when the dataset is built.

A dataset's options are those of its frame source (``video_sources.SOURCE_OPTIONS``), its own,
and those BasicSR's pipeline reads for the data loader; any other key is a typo
(``num_fram``, ``use_hfilp``) that BasicSR would silently ignore. A batch the options size past
``MAX_OPTION_BYTES`` is refused when the options file is read (``check_batch_size``).
"""
from memdeblur.data.video_sources import SOURCE_OPTIONS
from memdeblur.utils.option_check import (ANY, BOOL, INT, STR, at_least, check_option_bytes, check_options, optional,
                                          positive)

LOADER_OPTIONS = {
    'name': STR,
    'type': STR,
    'phase': STR,
    'scale': INT,
    'num_worker_per_gpu': at_least(0),
    'batch_size_per_gpu': at_least(1),
    'dataset_enlarge_ratio': positive(),
    'prefetch_mode': optional(STR),
    'num_prefetch_queue': at_least(1),
    'pin_memory': BOOL,
    'persistent_workers': BOOL,
    'use_shuffle': BOOL,
    'io_backend': ANY,  # BasicSR's own datasets' key; the frame source follows `layout` instead
}


def check_dataset_options(opt, dataset_options, required):
    """Refuse unknown keys (naming the closest valid one), wrong types and missing required keys.

    Args:
        opt (dict): The dataset's options.
        dataset_options (dict[str, OptionType]): The dataset class's own options.
        required (tuple[str]): Keys that must be present.
    """
    schema = {**LOADER_OPTIONS, **SOURCE_OPTIONS, **dataset_options}
    where = f'datasets:{opt.get("phase", opt.get("name", "?"))} ({opt.get("type", "dataset")})'
    check_options(opt, schema, where, required=('dataroot', ) + tuple(required))


PIXEL_BYTES = 3 * 4  # a pixel of a frame in a batch: RGB in float32


def check_batch_size(phase, opt, where):
    """Refuse a dataset whose smallest batch would take more than ``MAX_OPTION_BYTES``: ``batch_size_per_gpu``
    clips (training; BasicSR loads validation and test clips one at a time) of ``num_frame`` frames of ``gt_size``
    x ``gt_size`` pixels, blurry and sharp. Whole frames count as one pixel (their size is known once the data are
    read); a value missing, mistyped or out of range counts as 1 (the dataset's checks name it).

    Args:
        phase (str): The ``datasets`` key (``train``, ``val_2``, ``test``).
        opt (dict): The dataset's options.
        where (str): Which options these are, for the message.
    """
    def count(key):
        return opt[key] if at_least(1)(opt.get(key)) else 1

    clips = count('batch_size_per_gpu') if phase.split('_')[0] == 'train' else 1
    frames, side = count('num_frame'), count('gt_size')
    pixels = f'{side}x{side} crops' if at_least(1)(opt.get('gt_size')) else 'whole frames of at least 1 pixel'
    check_option_bytes(2 * clips * frames * side * side * PIXEL_BYTES,
                       f'one batch ({clips} clip(s) of {frames} frame(s), {pixels}, blurry and sharp, float32)', where)
