"""The options a video deblurring model accepts: every key BasicSR's pipeline or our models read, per section.

Anything else is a typo, refused with the closest names (``memdeblur.utils.option_check``) before a model is
built. ``size_multiple`` and ``min_size`` (top level) are deprecated: networks declare the frame sizes they take
(``memdeblur.utils.network_traits``); a value given still applies on top of the network's.
"""
from memdeblur.utils.option_check import ANY, BOOL, DICT, INT, NUMBER, STR, OptionError, check_options, one_of, optional
from memdeblur.utils.precision import PRECISIONS

# Every option BasicSR's pipeline or this model reads, per section; anything else is a typo.
MODEL_OPTIONS = {
    None: {
        'name': STR, 'model_type': STR, 'scale': INT, 'num_gpu': ANY, 'manual_seed': optional(INT),
        'is_train': BOOL, 'dist': BOOL, 'rank': INT, 'world_size': INT, 'auto_resume': BOOL, 'root_path': STR,
        'datasets': DICT, 'network_g': DICT, 'path': DICT, 'train': DICT, 'val': optional(DICT),
        'logger': DICT, 'dist_params': DICT, 'find_unused_parameters': BOOL,
        'size_multiple': INT, 'min_size': INT,
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


def check_model_options(opt):
    """Refuse unknown or mistyped keys in the sections of ``opt`` that BasicSR and this model read."""
    check_options(opt, MODEL_OPTIONS[None], 'options', required=('name', 'model_type', 'network_g', 'path'))
    for section, schema in MODEL_OPTIONS.items():
        if section is not None and opt.get(section) is not None:
            check_options(opt[section], schema, f'options section {section!r}')
    for part in ('optim_g', 'scheduler'):  # passed to torch as they are: 'lr: 5e-4' would arrive as text
        for key, value in (opt.get('train') or {}).get(part, {}).items():
            if key != 'type' and isinstance(value, str):
                raise OptionError(f'options section train:{part}: {key!r} is the text {value!r}; write a number '
                                  f'(YAML reads 5e-4 as text: write !!float 5e-4 or 0.0005).')
