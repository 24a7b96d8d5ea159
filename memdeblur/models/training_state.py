"""BasicSR's resumable training state, made safe: saved as plain data, checked against the run before it is loaded.

A state holds tensors, numbers and plain containers only, so that it loads with ``weights_only=True``: a scheduler's
``Counter`` (``MultiStepRestartLR``'s milestones) is saved as a dict (``training_state``) and made a ``Counter`` again
after loading (``restore_counters``). Before a state is loaded, ``check_resumable`` refuses one of another network
or configuration, and ``log_kept_settings`` says which optimizer settings of the options the state overrides; an
unusable network saved with a state is reported as the state's (``load_weights``).
"""
import collections
import os.path as osp

import torch
from basicsr.utils import get_root_logger

from memdeblur.networks.checkpoint import CheckpointError, load_pretrained
from memdeblur.utils.naming import listed


def training_state(epoch, current_iter, optimizers, schedulers, grad_scaler_state):
    """The state BasicSR saves, with schedulers' ``Counter`` attributes as dicts and the loss scaler's state
    (``grad_scaler``) when there is one."""
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in optimizers],
             'schedulers': [{k: dict(v) if isinstance(v, collections.Counter) else v for k, v in s.state_dict().items()}
                            for s in schedulers]}
    if grad_scaler_state is not None:
        state['grad_scaler'] = grad_scaler_state
    return state


def counter_names(schedulers):
    """For each scheduler, the names of its ``Counter`` attributes (before a state is loaded into it)."""
    return [[k for k, v in vars(s).items() if isinstance(v, collections.Counter)] for s in schedulers]


def restore_counters(schedulers, names):
    """Make the attributes ``counter_names`` listed ``Counter``s again after loading a state."""
    for scheduler, keys in zip(schedulers, names):
        for key in keys:
            setattr(scheduler, key, collections.Counter(getattr(scheduler, key)))


def check_resumable(resume_state, optimizers, schedulers, net, source, max_listed=4):
    """Raise ``CheckpointError`` naming ``source`` when the state's optimizers do not fit this run's: another
    number of optimizers, schedulers, parameter groups or parameters, or state tensors (Adam's moments) of other
    shapes than the parameters of ``net``. torch would load a state of the same parameter count silently and fail at
    the first step, or fail with an error about sizes that names nothing."""
    names = {id(p): n for n, p in net.named_parameters()}
    problems = []
    for kind, saved, own in (('optimizers', resume_state.get('optimizers'), optimizers),
                             ('schedulers', resume_state.get('schedulers'), schedulers)):
        if not isinstance(saved, list) or len(saved) != len(own):
            problems.append(f'{len(saved) if isinstance(saved, list) else "no"} {kind} in the state, '
                            f'{len(own)} in this run')
    for saved, optimizer in zip(resume_state.get('optimizers') or [], optimizers):
        groups = [len(g['params']) for g in optimizer.param_groups]
        saved_groups = [len(g.get('params', ())) for g in saved.get('param_groups', ())]
        if saved_groups != groups:
            problems.append(f'parameters per optimizer group: {saved_groups} in the state, {groups} in this run')
            continue
        params = [p for g in optimizer.param_groups for p in g['params']]
        ids = [i for g in saved['param_groups'] for i in g['params']]
        shapes = []
        for i, param in zip(ids, params):
            moments = [v for v in (saved.get('state') or {}).get(i, {}).values() if torch.is_tensor(v) and v.dim()]
            if moments and moments[0].shape != param.shape:
                shapes.append(f'{names.get(id(param), "?")}: {tuple(moments[0].shape)} vs {tuple(param.shape)}')
        if shapes:
            problems.append(f'{len(shapes)} parameter(s) of another shape (state vs this run): '
                            f'{listed(shapes, max_listed)}')
    if problems:
        raise CheckpointError(f'Training state {source!r} was saved by a run of another network or configuration '
                              f'than {type(net).__name__} of these options: ' + '; '.join(problems) + '.')


def log_kept_settings(resume_state, optimizers, source):
    """Warn when the options set an optimizer differently from the state (``train:optim_g:lr`` changed before
    ``--auto_resume``, ...): resuming keeps the state's settings and learning-rate schedule, as BasicSR does."""
    for saved, optimizer in zip(resume_state['optimizers'], optimizers):
        for index, (then, now) in enumerate(zip(saved['param_groups'], optimizer.param_groups)):
            changed = [key for key in now if key not in ('params', 'lr') and key in then and now[key] != then[key]]
            if changed:
                get_root_logger().warning(
                    f'Resuming from {source}: the options set {", ".join(f"{k} {now[k]}" for k in changed)} for '
                    f'parameter group {index}, the state {", ".join(f"{k} {then[k]}" for k in changed)}; the '
                    'state\'s values and learning-rate schedule are used. To train with the new ones, start a new '
                    'run from the saved weights (path:pretrain_network_g) instead of resuming.')


def load_weights(net, load_path, param_key, strict, key_origin=None, resume_state=None, models_dir=None):
    """``load_pretrained`` into ``net`` (``key_origin``: where ``param_key`` was set, None for a default); when a run
    resumes from ``resume_state``, BasicSR loads the network saved with it (in ``models_dir``, a file the user never
    named), so an error about that file names the state."""
    try:
        load_pretrained(net, load_path, param_key, strict, key_origin)
    except CheckpointError as err:
        if not resume_state or osp.dirname(osp.abspath(load_path)) != osp.abspath(models_dir):
            raise
        raise CheckpointError(f'Cannot resume from training state {resume_state!r}: the network saved with it, '
                              f'{load_path}, is unusable for this run (a state of another experiment, network or '
                              f'configuration?): {err}') from err
