"""The options a video deblurring model accepts: every key BasicSR's pipeline or our models read, per section.

Anything else is a typo, refused with the closest names (``memdeblur.utils.option_check``) before a model is
built. Frame sizes are not options: networks declare the sizes they take (``memdeblur.networks.traits``).

Values BasicSR's loop divides by or counts with are refused when they would crash it or make the run meaningless:
``logger:print_freq``, ``logger:save_checkpoint_freq`` and ``val:val_freq`` are moduli of the iteration (0 is a
``ZeroDivisionError``), ``train:total_iter: 0`` would save the untrained network as the model, a negative
``max_norm`` would flip the gradients, and so on. ``check_model_sections`` applies these checks when an options file
is read (``memdeblur.run_options``), before BasicSR logs, copies or writes anything;
``check_training_sections`` adds what training reads without a default.
"""
from memdeblur.utils.option_check import (ANY, BOOL, DICT, INT, NUMBER, STR, OptionError, OptionType, at_least,
                                          check_options, check_value, one_of, optional, positive)
from memdeblur.utils.precision import PRECISIONS

EMA_DECAY = OptionType('a number from 0 (no EMA) to below 1', lambda value: NUMBER(value) and 0 <= value < 1)
SEED = OptionType('an integer from 0 to 4294967295', lambda value: INT(value) and 0 <= value < 2**32)

# Every option BasicSR's pipeline or this model reads, per section; anything else is a typo.
MODEL_OPTIONS = {
    None: {
        'name': STR, 'model_type': STR, 'scale': INT, 'num_gpu': ANY, 'manual_seed': optional(INT),
        'is_train': BOOL, 'dist': BOOL, 'rank': INT, 'world_size': INT, 'auto_resume': BOOL, 'root_path': STR,
        'datasets': DICT, 'network_g': DICT, 'path': DICT, 'train': DICT, 'val': optional(DICT),
        'logger': DICT, 'dist_params': DICT, 'find_unused_parameters': BOOL,
    },
    'train': {
        'ema_decay': NUMBER, 'max_norm': optional(NUMBER), 'optim_g': DICT, 'scheduler': DICT,
        'total_iter': INT, 'warmup_iter': INT, 'pixel_opt': DICT, 'fix_flow': optional(INT),
        'flow_lr_mul': NUMBER, 'precision': one_of(*PRECISIONS), 'channels_last': BOOL, 'compile': BOOL,
    },
    'val': {
        'val_freq': NUMBER, 'save_img': BOOL, 'metrics': optional(DICT), 'complexity': DICT,
        'border_frames': one_of('reflect', 'inner'), 'window_batch': INT,
        'fast': BOOL, 'precision': one_of(*PRECISIONS),
    },
    'path': {
        'pretrain_network_g': optional(STR), 'strict_load_g': BOOL, 'param_key_g': one_of('params', 'params_ema'),
        'resume_state': optional(STR), 'experiments_root': STR, 'models': STR, 'training_states': STR, 'log': STR,
        'visualization': STR, 'results_root': STR,
    },
    'logger': {'print_freq': NUMBER, 'save_checkpoint_freq': NUMBER, 'use_tb_logger': BOOL, 'wandb': optional(DICT)},
}
# The values of the right type that BasicSR's loop and our models can run with, checked after the types: the
# frequencies are moduli of the iteration, 0 iterations would save the untrained network as the model, a negative
# max_norm would flip the gradients, numpy's seed takes 0 to 2**32 - 1, window_batch is a range() step.
LIMITS = {
    None: {'scale': at_least(1), 'manual_seed': SEED},
    'train': {'total_iter': at_least(1), 'max_norm': at_least(0, NUMBER), 'ema_decay': EMA_DECAY,
              'flow_lr_mul': at_least(0, NUMBER)},
    'val': {'val_freq': positive(), 'window_batch': at_least(1)},
    'logger': {'print_freq': positive(), 'save_checkpoint_freq': positive()},
}
# What BasicSR's training pipeline and models read without a default (a missing one is a KeyError deep inside),
# and the optimizers and schedulers BasicSR 1.4.2 builds (``BaseModel.get_optimizer``, ``setup_schedulers``).
TRAINING_REQUIRED = {'train': ('total_iter', 'optim_g', 'scheduler', 'pixel_opt'),
                     'logger': ('print_freq', 'save_checkpoint_freq', 'use_tb_logger')}
VALIDATION_REQUIRED = ('val_freq', 'save_img')
OPTIMIZERS = ('Adam', )
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')


def check_model_options(opt):
    """Refuse unknown or mistyped keys, missing required ones and values out of range (``LIMITS``) in the sections
    of ``opt`` that BasicSR and this model read."""
    check_options(opt, MODEL_OPTIONS[None], 'options', required=('name', 'model_type', 'network_g', 'path'))
    check_model_sections(opt, 'options')


def check_model_sections(opt, where):
    """The checks of ``check_model_options`` on what ``opt`` has: the values of its top-level options and every
    section present (unknown or mistyped keys, values out of range), without requiring a model (``check_data.py``
    reads options files that hold only datasets).

    Args:
        opt (dict): The options.
        where (str): What they are, for messages: ``options`` (a model's), or an options file's path.
    """
    for key, value in opt.items():
        if key in MODEL_OPTIONS[None]:
            check_value(key, value, MODEL_OPTIONS[None][key], where)
    for section, schema in MODEL_OPTIONS.items():
        if section is not None and opt.get(section) is not None:
            check_options(opt[section], schema, f'{where} section {section!r}')
    for section, limits in LIMITS.items():
        values = opt if section is None else opt.get(section) or {}
        for key, limit in limits.items():
            if values.get(key) is not None:
                check_value(key, values[key], limit, where if section is None else f'{where} section {section!r}')
    for part in ('optim_g', 'scheduler'):  # passed to torch as they are: 'lr: 5e-4' would arrive as text
        for key, value in ((opt.get('train') or {}).get(part) or {}).items():
            if key != 'type' and isinstance(value, str):
                raise OptionError(f'{where} section train:{part}: {key!r} is the text {value!r}; write a '
                                  f'number (YAML reads 5e-4 as text: write !!float 5e-4 or 0.0005).')


def check_training_sections(opt, where):
    """Refuse a training options file without what BasicSR's training pipeline reads without a default: a
    ``datasets:train`` (and no phase but ``val*`` beside it), ``train`` and ``logger`` sections with their
    required options, ``val_freq`` and ``save_img`` when there is a ``val`` section, an optimizer and scheduler
    BasicSR builds and a positive learning rate (``check_model_sections`` has checked the values already)."""
    if not isinstance((opt.get('datasets') or {}).get('train'), dict):
        raise OptionError(f'{where}: training needs a datasets:train section (the training data).')
    for phase in opt['datasets']:  # BasicSR's create_train_val_dataloader raises a bare ValueError on others
        if phase != 'train' and phase.split('_')[0] != 'val':
            raise OptionError(f'{where}: datasets:{phase}: training reads datasets:train and validation sets named '
                              'val or val_<anything>; rename it or remove it.')
    required = dict(TRAINING_REQUIRED, **({'val': VALIDATION_REQUIRED} if opt.get('val') is not None else {}))
    for section, keys in required.items():
        if not isinstance(opt.get(section), dict):
            raise OptionError(f'{where}: training needs a {section} section with {", ".join(keys)}.')
        for key in keys:
            if opt[section].get(key) is None:
                expected = LIMITS.get(section, {}).get(key, MODEL_OPTIONS[section][key])
                raise OptionError(f'{where}: training needs the option {section}:{key} ({expected.description}).')
    for part, types in (('optim_g', OPTIMIZERS), ('scheduler', SCHEDULERS)):
        check_value('type', opt['train'][part].get('type'), one_of(*types), f'{where} section train:{part}')
    check_value('lr', opt['train']['optim_g'].get('lr'), positive(), f'{where} section train:optim_g')
