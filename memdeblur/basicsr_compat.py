"""Every gap between BasicSR 1.4.2 and this project's environment, closed in one place.

BasicSR 1.4.2 is the toolbox users have, but it predates current torchvision and assumes
CUDA in a few paths. Each gap gets one small, named fix and one test
(``tests/test_basicsr_compat.py``), so that the day BasicSR fixes a gap its line can go.

=====  ==========================================================  =============================
gap    BasicSR 1.4.2 behaviour                                     closed by
=====  ==========================================================  =============================
1      ``basicsr.data.degradations`` imports the removed            ``alias_torchvision_functional_tensor``
       ``torchvision.transforms.functional_tensor``
2      ``basicsr.train.load_resume_state`` maps the state onto     ``load_resume_state``
       ``torch.cuda.current_device()`` and looks for states
       relative to the working directory
3      ``init_dist`` sets ``rank % torch.cuda.device_count()``     ``init_dist``
       (ZeroDivisionError without GPUs) and uses nccl
4      ``BaseModel.model_to_device`` gives DDP CUDA ``device_ids``  ``wrapped_for_processes``
5      the video models' validation puts metric tensors on          ``VideoDeblurModel`` (its
       ``'cuda'`` and squeezes ``lq`` in place (on CPU this         validation: ``Evaluator`` over
       shrinks ``self.lq`` too); their test datasets accept only    ``VideoDeblurTestDataset``)
       vid4/REDS names and no LMDB
6      ``create_train_val_dataloader`` counts iterations per epoch  ``create_train_val_dataloader``
       with ``ceil`` but the train loader drops the last partial
       batch, so training stops before ``total_iter`` (GOPRO's
       recipe: about 350 iterations early)
7      checkpoints and states are written in place and save        ``VideoDeblurModel.save_network``,
       errors only logged: a kill mid-save leaves a truncated       ``save_training_state`` (atomic)
       file, and ``--auto_resume`` dies on the newest state         and ``load_resume_state`` (skips
       when it is unreadable                                        unreadable states with a warning)
8      ``BasicVSRPlusPlus`` builds its deformable alignment only   ``build_basicvsrpp_alignment_without_cuda``
       when CUDA is available: on a CPU it silently becomes
       another network (no alignment, other keys), whose
       checkpoints do not load on a GPU and vice versa, though
       its forward runs ``torchvision.ops.deform_conv2d``,
       which works on the CPU
9      ``train_pipeline`` counts one more iteration in every       ``VideoDeblurModel.validation``
       epoch it enters after ``total_iter``, so the final          (labels it ``total_iter``)
       validation of the last weights is labelled past it (an
       800-iteration run: "@ 802 iter", images under 802/)
10     ``parse_options`` reads options files with YAML's full      ``trusted_pipeline`` (the options
       loader (a ``!!python/object/apply`` tag runs code) and       read by
       applies ``--force_yml`` with ``eval``/``exec``; names        ``memdeblur.run_options``)
       such as ``name: ../../x`` become folders anywhere
11     ``mkdir_and_rename`` renames any existing folder named       ``trusted_pipeline`` (archives only
       like the experiment, a user's own folder too                 folders a memdeblur run made)
12     training states are read with ``weights_only=False``         ``load_resume_state`` (weights only)
       (a crafted state runs code)
13     EDVR's and BasicVSR++'s deformable convolutions call         ``deform_conv2d_autocast_on_cpu``
       ``torchvision.ops.deform_conv2d``, whose autocast rule
       (compute in float32) torchvision registers for CUDA only:
       under CPU autocast (``train.precision: bfloat16``) it gets
       bfloat16 inputs, for which it has no CPU kernel
=====  ==========================================================  =============================

This module must run before the first ``import basicsr``; ``memdeblur/__init__.py`` imports
it first. Importing it closes only what importing BasicSR and building its networks need (gaps 1,
8 and 13); gaps 4, 5 and 9 are methods, closed in the model class that overrides them (gap 4 with
``wrapped_for_processes``); gaps 2, 3, 6,
10 and 11 change BasicSR's pipeline and are closed for the duration of a pipeline run by
``trusted_pipeline``, which our entry points use: a program that imports memdeblur and runs BasicSR's own
pipeline functions gets BasicSR's behaviour.
"""
import contextlib
import copy
import functools
import importlib.util
import inspect
import logging
import math
import os.path as osp
import sys
import warnings

import yaml

import torch

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def alias_torchvision_functional_tensor():
    """Gap 1: register ``torchvision.transforms.functional`` under the removed private name.

    The one function BasicSR takes from it, ``rgb_to_grayscale``, lives on in the public module.
    Nothing is done when the old module still exists.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        if importlib.util.find_spec(_FUNCTIONAL_TENSOR) is not None:
            return
    except ModuleNotFoundError:
        pass
    import torchvision.transforms.functional as functional
    sys.modules[_FUNCTIONAL_TENSOR] = functional


alias_torchvision_functional_tensor()

import basicsr.test  # noqa: E402  (after the alias: importing basicsr needs it)
import basicsr.train  # noqa: E402
import basicsr.utils.misc  # noqa: E402
import basicsr.utils.options  # noqa: E402
from basicsr.utils import check_resume, scandir  # noqa: E402
from basicsr.utils.dist_util import init_dist as _basicsr_init_dist  # noqa: E402

from memdeblur.utils.outputs import OutputError, check_output_location, read_manifest, write_manifest  # noqa: E402
from memdeblur.networks.checkpoint import read_checkpoint  # noqa: E402


def load_resume_state(opt):
    """Gap 2: BasicSR's ``load_resume_state``, loading onto the CPU and from the experiment's folder.

    Loading onto the CPU is right on every machine: ``optimizer.load_state_dict`` moves each state
    tensor to its parameter's device. ``--auto_resume`` looks in ``opt['path']['training_states']``
    (BasicSR looks in ``experiments/<name>`` below the working directory, missing states when
    training was started from elsewhere). Gap 12: states are read with ``weights_only=True``
    (``memdeblur.networks.checkpoint.read_checkpoint``): a state is tensors, numbers and containers.
    """
    if not opt['auto_resume']:
        state_path = opt['path'].get('resume_state')
        if state_path is None:
            return None
        resume_state = read_checkpoint(state_path, 'Training state')
    else:
        state_path, resume_state = _newest_readable_state(opt)
        if state_path is None:
            return None
        opt['path']['resume_state'] = state_path
    check_resume(opt, resume_state['iter'])
    return resume_state


def _newest_readable_state(opt):
    """Gap 7: the newest training state that loads and whose network checkpoint loads, newest first.

    A state or checkpoint left truncated by a kill (before saves were atomic, or by a full disk)
    is skipped with a warning naming it, and the previous one is taken.

    Returns:
        tuple: (path, loaded state), or (None, None) when there is none.
    """
    states_dir = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
    models_dir = opt['path'].get('models') or osp.join(osp.dirname(states_dir), 'models')
    if not osp.isdir(states_dir):
        return None, None
    iters = sorted((int(osp.splitext(s)[0]) for s in scandir(states_dir, suffix='.state')
                    if osp.splitext(s)[0].isdigit()), reverse=True)
    # not get_root_logger(): BasicSR sets up its log file after resuming, and only on the first call
    logger = logging.getLogger('basicsr')
    for iteration in iters:
        state_path = osp.join(states_dir, f'{iteration}.state')
        try:
            state = read_checkpoint(state_path, 'Training state')
            torch.load(osp.join(models_dir, f'net_g_{iteration}.pth'), map_location='cpu', weights_only=True,
                       mmap=True)
        except Exception as err:  # truncated or corrupt files raise several types
            logger.warning(f'auto_resume: skipping iteration {iteration}: {state_path} or its network checkpoint '
                           f'in {models_dir} cannot be read ({type(err).__name__}: {err}).')
            continue
        return state_path, state
    return None, None


def init_dist(launcher, backend='nccl', **kwargs):
    """Gap 3: distributed init that also works without GPUs (gloo backend, no device to set).

    With CUDA available, BasicSR's own ``init_dist`` runs unchanged.
    """
    if torch.cuda.is_available():
        return _basicsr_init_dist(launcher, backend, **kwargs)
    if launcher != 'pytorch':
        raise ValueError(f'Launcher {launcher!r} needs GPUs; on CPU use --launcher pytorch (torchrun).')
    torch.distributed.init_process_group(backend='gloo', **kwargs)


def wrapped_for_processes(net, opt, device):
    """Gap 4: ``net`` wrapped as BasicSR's ``model_to_device`` wraps it, DistributedDataParallel given CUDA
    ``device_ids`` only when ``device`` is a GPU (``opt``: the run's options: ``dist``, ``num_gpu``,
    ``find_unused_parameters``)."""
    if opt['dist']:
        device_ids = [torch.cuda.current_device()] if device.type == 'cuda' else None
        return torch.nn.parallel.DistributedDataParallel(
            net, device_ids=device_ids, find_unused_parameters=opt.get('find_unused_parameters', False))
    return torch.nn.parallel.DataParallel(net) if opt['num_gpu'] > 1 else net


_basicsr_create_train_val_dataloader = basicsr.train.create_train_val_dataloader


def create_train_val_dataloader(opt, logger):
    """Gap 6: BasicSR's loaders, with enough epochs to reach ``total_iter`` with ``drop_last``."""
    train_loader, train_sampler, val_loaders, total_epochs, total_iters = _basicsr_create_train_val_dataloader(
        opt, logger)
    if train_loader is not None and len(train_loader) > 0:
        total_epochs = max(total_epochs, math.ceil(total_iters / len(train_loader)))
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters


def build_basicvsrpp_alignment_without_cuda():
    """Gap 8: BasicVSR++ with its deformable alignment on every device, as on a GPU.

    The alignment modules are added after BasicSR's constructor when it skipped them (same keys,
    same module order as a CUDA build; their random initialisation comes after the others').
    """
    from basicsr.archs import basicvsrpp_arch

    cls = basicvsrpp_arch.BasicVSRPlusPlus
    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def init_with_alignment(self, *args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Deformable alignment module is not added')
            original(self, *args, **kwargs)
        if self.is_with_alignment:
            return
        options = signature.bind(self, *args, **kwargs)
        options.apply_defaults()
        mid_channels = options.arguments['mid_channels']
        for name in self.backbone:
            self.deform_align[name] = basicvsrpp_arch.SecondOrderDeformableAlignment(
                2 * mid_channels, mid_channels, 3, padding=1, deformable_groups=16,
                max_residue_magnitude=options.arguments['max_residue_magnitude'])
        self.is_with_alignment = True

    cls.__init__ = init_with_alignment


def deform_conv2d_autocast_on_cpu():
    """Gap 13: under CPU autocast, torchvision's ``deform_conv2d`` computes in float32 and returns the input's
    dtype, the rule torchvision registers for CUDA autocast. Nothing is registered where torchvision has its
    own CPU rule. Returns the registering ``torch.library.Library`` (the rule lives as long as it does)."""
    import torchvision  # noqa: F401  (defines the torchvision::deform_conv2d operator)
    if torch._C._dispatch_has_kernel_for_dispatch_key('torchvision::deform_conv2d', 'AutocastCPU'):
        return None

    def float32_deform_conv2d(*args):
        with torch.autocast('cpu', enabled=False):
            output = torch.ops.torchvision.deform_conv2d(
                *[a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args])
        return output.to(args[0].dtype)

    library = torch.library.Library('torchvision', 'IMPL')
    library.impl('deform_conv2d', float32_deform_conv2d, 'AutocastCPU')
    return library


def archive_own_folder(path):
    """Gap 11: BasicSR's ``mkdir_and_rename``, archiving an existing folder only when a memdeblur run made it.

    Every folder made here is marked as such (``memdeblur.utils.outputs.write_manifest``); any other
    existing folder (a user's, one unpacked from someone else's experiment, a link), and one holding an input of
    the run (the options file, the weights it starts from), is refused.
    """
    check_output_location(path)  # archiving moves the folder: no input of the run may lie in it
    if osp.lexists(path) and (osp.islink(path) or read_manifest(path) is None):
        raise OutputError(f'{path} exists and was not made by a memdeblur run (it has no '
                          '.memdeblur-output.json); refusing to archive it. Move it away or choose another name.')
    _basicsr_mkdir_and_rename(path)
    write_manifest(path, 'memdeblur run folder')


_basicsr_mkdir_and_rename = basicsr.utils.misc.mkdir_and_rename
_basicsr_parse_options = basicsr.utils.options.parse_options


@contextlib.contextmanager
def patched(patches):
    """Set ``(module, name, replacement)`` attributes for the duration of the block, then restore the originals."""
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    try:
        for module, name, replacement in patches:
            setattr(module, name, replacement)
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def pipeline_gaps():
    """Gaps 2, 3 and 6, closed where our entry points run BasicSR's training and test pipelines (inside
    ``trusted_pipeline``), not for every program that imports memdeblur."""
    return patched([(basicsr.train, 'load_resume_state', load_resume_state),
                    (basicsr.train, 'create_train_val_dataloader', create_train_val_dataloader),
                    (basicsr.utils.options, 'init_dist', init_dist)])


@contextlib.contextmanager
def trusted_pipeline(opt, argv):
    """Gaps 10 and 11, and the pipeline gaps (``pipeline_gaps``), for one run of BasicSR's train or test pipeline.

    Inside the block, BasicSR's ``parse_options`` receives ``opt`` (already read safely, overrides
    applied and checked by ``memdeblur.run_options.read_options``) instead of reading the file
    with YAML's full loader, and sees the command line ``argv`` without ``--force_yml`` (which it
    would ``exec``); ``sys.argv`` is the full command line again as soon as it returns, so the copy
    of the options file in the experiment folder records the command as typed. Existing run folders
    are archived only when a memdeblur run made them (``archive_own_folder``).
    """

    class PreparedOptions:  # what ``yaml.load(f, Loader=ordered_yaml()[0])`` returns inside parse_options
        def __init__(self, stream):
            pass

        def get_single_data(self):
            return copy.deepcopy(opt)

        def dispose(self):
            pass

    def parse_prepared_options(root_path, is_train=True):
        typed = sys.argv
        sys.argv = [typed[0], *argv]
        try:
            return _basicsr_parse_options(root_path, is_train)
        finally:
            sys.argv = typed

    patches = [(basicsr.utils.options, 'ordered_yaml', lambda: (PreparedOptions, yaml.Dumper)),
               (basicsr.train, 'parse_options', parse_prepared_options),
               (basicsr.test, 'parse_options', parse_prepared_options),
               (basicsr.utils.misc, 'mkdir_and_rename', archive_own_folder),
               (basicsr.train, 'mkdir_and_rename', archive_own_folder)]
    with patched(patches), pipeline_gaps():
        yield


# What must hold for every user of memdeblur's networks: the same BasicVSR++ on every device, its deformable
# convolution under CPU autocast. Gap 1 is closed above, before basicsr is first imported.
build_basicvsrpp_alignment_without_cuda()
_DEFORM_CONV2D_AUTOCAST_CPU = deform_conv2d_autocast_on_cpu()
