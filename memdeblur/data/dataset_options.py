"""The options every dataset of this project accepts, checked when the dataset is built.

A dataset's options are those of its frame source (``video_sources.SOURCE_OPTIONS``), its own,
and those BasicSR's pipeline reads for the data loader; any other key is a typo
(``num_fram``, ``use_hfilp``) that BasicSR would silently ignore.
"""
from memdeblur.data.video_sources import SOURCE_OPTIONS
from memdeblur.utils.option_check import ANY, BOOL, INT, STR, at_least, check_options, optional, positive

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
