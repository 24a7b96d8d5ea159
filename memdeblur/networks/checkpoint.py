"""Loading checkpoints of any origin into this project's networks, with errors that say what differs.

Two formats exist:

* BasicSR's: ``{'params': state_dict}`` (and/or ``'params_ema'``), keys named as our modules.
* The authors' ("official"): ``{'epoch', 'model', 'state_dict'}`` with keys prefixed
  ``model.`` (single GPU) or ``module.model.`` (their multi-GPU trainer) and the original
  module names.

The weights loaded are those ``path:param_key_g`` chooses (``weight_sets``); every error about them names the key
used, where it was set (the options file or the default), the weights the file holds and which of them would fit
(``weights_note``), in every tool alike: they all load through ``load_pretrained``.

Every file is checked before ``torch.load`` inflates it (``check_declared_sizes``): a zip whose records declare more
than the file holds, or inflate beyond what the target network needs (a zip bomb), is refused from its directory
alone. Loaded weights must be tensors (``weights_of``).

An official checkpoint is converted by renaming keys with the regular expressions the network declares
(``network_traits(net).official_keys``, a ``KeyRules``); no original module code is involved. Every
load is checked key by key and shape by shape against the target network first, so a wrong
file or a different configuration fails with a list of the differences, never silently.
"""
import collections
import contextlib
import os.path as osp
import re
import zipfile
from collections import OrderedDict
from typing import NamedTuple, Optional

import torch
from basicsr.utils import get_root_logger

from memdeblur.utils.atomic_save import atomic_torch_save
from memdeblur.utils.outputs import check_outputs
from memdeblur.utils.run_inputs import note_input
from memdeblur.utils.naming import listed
from memdeblur.networks.traits import bare_network, network_traits

OFFICIAL_PREFIXES = ('module.model.', 'model.', 'module.')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used for the requested network."""


# The authors' released checkpoints, published in the Google Drive folder their README links; README.md, "Models",
# says which options file and test data go with each.
RELEASED_CHECKPOINTS = ('memdeblur_gopro_ds.pth.tar', 'memdeblur_gopro_ori.pth.tar')
RELEASED_CHECKPOINTS_URL = 'https://drive.google.com/drive/folders/1rd9bIvsk9DBZaA7LXWGNMZ3SM11-_g8h'


def where_to_get(path):
    """Where the weights file ``path`` comes from, for the error that says it is missing: the authors' Google Drive
    folder for one of their released file names, else the README's table of models."""
    name = osp.basename(path)
    if name in RELEASED_CHECKPOINTS:
        return (f"{name} is one of the authors' released checkpoints: download it from their Google Drive folder "
                f'{RELEASED_CHECKPOINTS_URL} (README.md, "Models").')
    return 'README.md, "Models", says which checkpoints exist and where to get them.'


def read_checkpoint(path, what='Checkpoint', max_inflated=None, weights=False):
    """Load a PyTorch file (checkpoint, training state, test vectors) onto the CPU without running code from it.

    ``torch.load(weights_only=True)``: tensors, numbers and plain containers only. Training states written
    before they were plain may hold a ``collections.Counter`` (the milestones of BasicSR's
    ``MultiStepRestartLR``), allowed where this torch can allow it. The file's declared sizes are checked first
    (``check_declared_sizes``), so that a crafted file cannot fill the memory before it is refused.

    Args:
        path (str): The file.
        what (str): What it is, for messages.
        max_inflated (int | None): The most bytes its compressed records may inflate to (``load_pretrained``: a
            multiple of the target network's weights); None: ``MAX_INFLATION`` times their compressed size.
        weights (bool): It holds a network's weights: when it is missing, say where to get it (``where_to_get``).

    Raises:
        CheckpointError: naming the file when it is missing, corrupt, too large for what it declares, or asks to
            run code.
    """
    note_input(path, what.lower())  # the run reads it: none of its outputs may replace it
    if not osp.isfile(path):
        raise CheckpointError(f'{what} {path!r} does not exist.' + (f' {where_to_get(path)}' if weights else ''))
    check_declared_sizes(path, what, max_inflated)
    allow = getattr(torch.serialization, 'safe_globals', None)
    try:
        with allow([collections.Counter]) if allow else contextlib.nullcontext():
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for corrupt, foreign or crafted files
        raise CheckpointError(f'{what} {path!r} could not be read as a PyTorch file of tensors and plain values: '
                              f'{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}') from err


# torch.save stores its records uncompressed; compressed ones come from a re-packed or crafted file. Deflate packs
# weights hardly at all and zeros about 1000:1: more than 1 MiB inflating over 100 times is a zip bomb.
MAX_INFLATION = 100
INFLATION_ALLOWANCE = 2**20


def check_declared_sizes(path, what='Checkpoint', max_inflated=None):
    """Refuse a PyTorch zip file whose records would take more memory than the file justifies, from its directory
    alone (nothing is inflated).

    ``torch.load`` allocates each record's declared uncompressed size and inflates into it, so a 1 MiB file can
    fill gigabytes. Stored records (what ``torch.save`` writes) may declare no more than the file holds; compressed
    ones may inflate to at most ``MAX_INFLATION`` times their compressed size (or 1 MiB, when more), and to at
    most ``max_inflated`` bytes when given.

    A file that is not a zip is torch's legacy format (before torch 1.6), left to ``torch.load``: nothing in it is
    compressed, its tensors are filled from the file itself, so they cannot fill more memory than the file's size.

    Raises:
        CheckpointError: naming the file, the size declared and the bound.
    """
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f'{what} {path!r} is a damaged zip file (PyTorch\'s format): {err}') from err
    size = osp.getsize(path)
    stored = sum(r.file_size for r in records if r.compress_type == zipfile.ZIP_STORED)
    if stored > size:
        raise CheckpointError(f'{what} {path!r} declares {stored} bytes of stored records, more than the {size} '
                              'bytes the file holds: a damaged or crafted file; refused before reading it.')
    packed = [r for r in records if r.compress_type != zipfile.ZIP_STORED]
    for record in packed:
        _refuse_inflation(path, what, f'record {record.filename!r}', record.file_size, record.compress_size)
    _refuse_inflation(path, what, 'its compressed records', sum(r.file_size for r in packed),
                      sum(r.compress_size for r in packed), max_inflated)


def _refuse_inflation(path, what, name, inflated, compressed, max_inflated=None):
    """``CheckpointError`` when ``inflated`` bytes packed into ``compressed`` exceed ``MAX_INFLATION`` times (or
    ``INFLATION_ALLOWANCE``, when more), or ``max_inflated``."""
    bound = max(INFLATION_ALLOWANCE, MAX_INFLATION * compressed)
    if max_inflated is not None:
        bound = min(bound, max_inflated)
    if inflated > bound:
        raise CheckpointError(f'{what} {path!r}: {name} would inflate to {inflated} bytes from {compressed}, more '
                              f'than the {bound} allowed (at most {MAX_INFLATION} times'
                              f'{", and what this network needs" if max_inflated is not None else ""}): a zip bomb? '
                              'Refused before inflating.')


def is_official_checkpoint(checkpoint):
    """Whether a loaded checkpoint is in the authors' format (``state_dict`` with prefixed keys)."""
    return isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict)


def convert_official_state_dict(state_dict, rules):
    """Rename an official state dict's keys to ours.

    Args:
        state_dict (dict[str, Tensor]): Keys as the authors saved them (any known prefix).
        rules (KeyRules): The target network's rules (``official_key_rules(net)``).

    Returns:
        OrderedDict[str, Tensor]: The same tensors under our key names, unused ones dropped.
    """
    converted = OrderedDict()
    for key, value in state_dict.items():
        key = _strip_prefix(key)
        if any(re.search(pattern, key) for pattern in rules.dropped):
            continue
        for pattern, replacement in rules.renames:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        converted[key] = value
    return converted


def official_key_rules(net):
    """The ``KeyRules`` ``net`` declares for the authors' checkpoints; ``CheckpointError`` when it has none."""
    rules = network_traits(net).official_keys
    if rules is None:
        raise CheckpointError(f'{type(bare_network(net)).__name__} declares no original-format checkpoint keys '
                              '(network_traits: official_keys); give a BasicSR checkpoint ({"params": ...}).')
    return rules


def _strip_prefix(key):
    for prefix in OFFICIAL_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


# The weights ``path:param_key_g`` chooses between in a BasicSR checkpoint (``model_options.MODEL_OPTIONS``).
PARAM_KEYS = ('params', 'params_ema')


def weight_sets(checkpoint, source):
    """What each value of ``path:param_key_g`` loads from a checkpoint of either format.

    A BasicSR checkpoint holds ``params`` and/or ``params_ema``; a file of the authors' format (``state_dict``) or a
    bare state dict holds one set of weights, which ``params`` loads (BasicSR's name for a file's only weights):
    its authors saved no EMA copy.

    Args:
        checkpoint (dict): What ``read_checkpoint`` returned.
        source (str): File name, for the message.

    Returns:
        dict[str, str]: ``path:param_key_g`` value -> the entry of the file it loads (``'state_dict'``, a key of
        ``PARAM_KEYS``, or ``''`` for a bare state dict).

    Raises:
        CheckpointError: naming the file and what it holds when it holds no weights.
    """
    if is_official_checkpoint(checkpoint):
        return {'params': 'state_dict'}
    if isinstance(checkpoint, dict):
        found = {key: key for key in PARAM_KEYS if key in checkpoint}
        if found:
            return found
        if checkpoint and all(torch.is_tensor(v) for v in checkpoint.values()):
            return {'params': ''}
    found = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise CheckpointError(f'Checkpoint {source!r} holds neither BasicSR weights (params/params_ema) nor an '
                          f'official state_dict; found {found}.')


def weights_in(checkpoint, entry, source, net):
    """The weights of ``entry`` (a value of ``weight_sets``) under our key names: the authors' renamed by the
    rules ``net`` declares; ``CheckpointError`` when they are not all tensors."""
    if entry == 'state_dict':
        return convert_official_state_dict(weights_of(checkpoint, 'state_dict', source), official_key_rules(net))
    return weights_of(checkpoint, entry, source) if entry else OrderedDict(checkpoint)


def describe_weights(key, entry):
    """How a message names the weights ``path:param_key_g: key`` loads from ``entry`` of the file."""
    if entry == 'state_dict':
        return f"{key} (the authors' state_dict)"
    return key if entry else f'{key} (the bare state dict)'


def chosen_weights(sets, param_key, key_origin, source):
    """The ``path:param_key_g`` value to load: ``param_key`` when the file holds it, else the file's other weights,
    with a warning naming the key asked for and where it was set (``key_origin``; None: the default), as BasicSR's
    ``load_network`` falls back (its test options ask for ``params_ema`` of files holding only ``params``)."""
    if param_key in sets:
        return param_key
    key = next(iter(sets))
    get_root_logger().warning(f'Checkpoint {source} holds no {param_key} ({key_origin or "the default"}); loading '
                              f'its {describe_weights(key, sets[key])}.')
    return key


def weights_note(sets, used, key_origin, fits):
    """The end of every message about the weights chosen in a checkpoint: which were used and where the choice comes
    from (``key_origin``: the options' ``path:param_key_g``; None: the default), the weights the file holds, and
    which others would fit the network (``fits``: key -> bool, asked only about keys other than ``used``), with
    the setting that loads them."""
    note = f'Weights used: {describe_weights(used, sets[used])}, {key_origin or "the default"}. ' if used else ''
    note += f'The file holds {", ".join(describe_weights(key, entry) for key, entry in sets.items())}'
    others = [key for key in sets if key != used]
    fitting = [key for key in others if fits(key)]
    if fitting:
        return note + f'; {fitting[0]} would fit: set path:param_key_g: {fitting[0]}.'
    if not others:
        return note + '.'
    return note + ('; none of the others fits either.' if used else '; none of them fits this network.')


def weights_of(checkpoint, key, source, max_listed=8):
    """``checkpoint[key]`` as an ``OrderedDict`` of tensors; ``CheckpointError`` naming the file and the first
    entries that are not tensors (what ``check_finite`` and ``load_state_dict`` would fail on with a traceback)."""
    weights = checkpoint[key]
    if not isinstance(weights, dict):
        raise CheckpointError(f'Checkpoint {source!r}: {key} is a {type(weights).__name__}, not a dict of tensors.')
    bad = [f'{k} ({type(v).__name__})' for k, v in weights.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f'Checkpoint {source!r}: {len(bad)} entr{"y" if len(bad) == 1 else "ies"} of {key} '
                              f'{"is" if len(bad) == 1 else "are"} not tensors: {listed(bad, max_listed)}.')
    return OrderedDict(weights)


def check_state_dict(expected, state_dict, source, arch='MemDeblurNet', max_listed=8):
    """Raise ``CheckpointError`` listing every missing, unexpected or wrongly shaped key.

    Args:
        expected (dict[str, Tensor]): The target network's ``state_dict()``.
        state_dict (dict[str, Tensor]): Weights to load, under our key names.
        source (str): File name, for the message.
        arch (str): Target architecture name, for the message.
        max_listed (int): Keys listed per kind of difference.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs network {tuple(expected[k].shape)}' for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or wrong_shape):
        return
    lines = [f'Checkpoint {source!r} does not fit this {arch} (a different model or configuration?):']
    for title, items in (('missing from the checkpoint', missing), ('not in the network', unexpected),
                         ('shape differs', wrong_shape)):
        if items:
            lines.append(f'  {len(items)} {title}: {listed(items, max_listed)}')
    raise CheckpointError('\n'.join(lines))


def check_finite(state_dict, source, max_listed=8):
    """Raise ``CheckpointError`` naming every floating-point tensor that holds NaN or Inf values.

    Such weights (a diverged run, a corrupt file) would still produce numbers, and a test would
    score them as if the model were fine.
    """
    bad = [k for k, v in state_dict.items() if torch.is_floating_point(v) and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f'Checkpoint {source!r} holds non-finite (NaN or Inf) values in {len(bad)} '
                              f'tensor(s): {listed(bad, max_listed)}.')


def fitting_tensors(expected, state_dict):
    """The tensors of ``state_dict`` whose key and shape are in ``expected`` (a network's ``state_dict()``)."""
    return OrderedDict((k, v) for k, v in state_dict.items()
                       if k in expected and tuple(v.shape) == tuple(expected[k].shape))


def select_loadable(expected, state_dict, source, arch, logger):
    """Non-strict loading: the tensors whose key and shape fit, after logging every difference.

    Missing, unexpected and wrongly shaped keys are logged (as BasicSR's non-strict loading does);
    a checkpoint of which no tensor fits is refused, since loading it would leave the network as
    initialised while looking loaded.
    """
    fitting = fitting_tensors(expected, state_dict)
    if not fitting:
        raise CheckpointError(f'Checkpoint {source!r}: none of its {len(state_dict)} tensors fits this {arch} '
                              f'(strict_load: false would load nothing). A checkpoint of another model?')
    for title, keys in (('missing from the checkpoint (left as initialised)', [k for k in expected
                                                                               if k not in fitting]),
                        ('not in the network (ignored)', [k for k in state_dict if k not in expected]),
                        ('of another shape (ignored)', [k for k in state_dict if k in expected and k not in fitting])):
        if keys:
            logger.warning(f'Loading {source} non-strictly into {arch}: {len(keys)} key(s) {title}: '
                           + ', '.join(keys))
    return fitting


# What a checkpoint may hold besides one copy of the weights: BasicSR's params_ema, the authors' optimizer state.
WEIGHT_COPIES = 4


def load_pretrained(net, path, param_key='params', strict=True, key_origin=None):
    """Load a checkpoint of either format into ``net`` after checking that it fits.

    Every error about the weights chosen (a key the file lacks, weights that do not fit, non-finite ones) ends with
    ``weights_note``: the key used and where it was set, the weights the file holds, and those that would fit.

    Args:
        net (nn.Module): Target network (a DDP/DataParallel wrapper is unwrapped).
        path (str): Checkpoint file.
        param_key (str): BasicSR key to load (``PARAM_KEYS``; the authors' format: ``params``).
        strict (bool): Require exactly matching keys and shapes. Without it, the tensors that fit
            are loaded and every difference is logged; a file of which nothing fits is refused.
        key_origin (str | None): Where ``param_key`` was set (``param_key_origin``); None: the default. A file
            lacking it loads its other weights, with a warning (``chosen_weights``).

    Returns:
        nn.Module: ``net``, loaded.

    Raises:
        CheckpointError: for an unreadable file, one whose compressed records would inflate beyond
            ``WEIGHT_COPIES`` times the network's weights (``check_declared_sizes``), a checkpoint that does not
            fit, non-tensor or NaN/Inf weights.
    """
    net = bare_network(net)
    arch = type(net).__name__
    expected = net.state_dict()
    needed = sum(v.numel() * v.element_size() for v in expected.values())
    checkpoint = read_checkpoint(path, max_inflated=WEIGHT_COPIES * needed + INFLATION_ALLOWANCE, weights=True)
    sets = weight_sets(checkpoint, path)

    def fits(key):  # whether the weights of another key would load as these are asked to (strictly or not)
        try:
            weights = weights_in(checkpoint, sets[key], path, net)
            check_finite(weights, path)
        except CheckpointError:
            return False
        fitting = fitting_tensors(expected, weights)
        return len(fitting) == len(weights) == len(expected) if strict else bool(fitting)

    key = chosen_weights(sets, param_key, key_origin, path)
    try:
        state_dict = weights_in(checkpoint, sets[key], path, net)
        check_finite(state_dict, path)
        if strict:
            check_state_dict(expected, state_dict, path, arch)
        else:
            state_dict = select_loadable(expected, state_dict, path, arch, get_root_logger())
    except CheckpointError as err:
        origin = key_origin if key == param_key else f'in place of {param_key}, which the file lacks'
        below = '\n  ' if '\n' in str(err) else ' '  # under a list of differences, else on the error's line
        raise CheckpointError(f'{err}{below}{weights_note(sets, key, origin, fits)}') from err
    net.load_state_dict(state_dict, strict=strict)
    return net


def param_key_origin(path_opt, param_key):
    """Where ``param_key`` comes from, for ``load_pretrained``: ``'set by path:param_key_g'`` when the options' ``path``
    section sets it to that key, else None (BasicSR's default: ``params``, ``params_ema`` for its EMA copy). Every
    tool names it alike, so that one options file gives one message wherever its weights are loaded."""
    return 'set by path:param_key_g' if (path_opt or {}).get('param_key_g') == param_key else None


class WeightsSource(NamedTuple):
    """The weights an options file names (``weights_source``)."""

    file: Optional[str]
    param_key: str
    strict: bool
    key_origin: Optional[str]  # ``param_key_origin``


def weights_source(opt, ckpt=None):
    """The ``WeightsSource`` an options file names, read as BasicSR's model reads it: ``path:pretrain_network_g``
    (or ``ckpt``), ``path:param_key_g`` (e.g. ``params_ema``), ``path:strict_load_g``."""
    path_opt = opt.get('path') or {}
    param_key = path_opt.get('param_key_g', 'params')
    return WeightsSource(ckpt or path_opt.get('pretrain_network_g'), param_key, path_opt.get('strict_load_g', True),
                         param_key_origin(path_opt, param_key))


def network_from_options(opt, opt_path='options', ckpt=None):
    """The network of an options file (read by ``read_options``) with its weights (``weights_source``; BasicSR or
    the authors' format), loaded as ``tools/test.py`` loads them, so that one options file gives the same weights in
    every tool."""
    from basicsr.archs import build_network

    if 'network_g' not in opt:
        raise CheckpointError(f'{opt_path} has no network_g section.')
    source = weights_source(opt, ckpt)
    if not source.file:
        raise CheckpointError(f'No weights: give --ckpt or set path:pretrain_network_g in {opt_path}.')
    return load_pretrained(build_network(dict(opt['network_g'])), source.file, source.param_key, source.strict,
                           source.key_origin)


def convert_checkpoint(src, dst, net, overwrite=False):
    """Convert an official checkpoint file to BasicSR format, verified against ``net``.

    Args:
        src (str): Official checkpoint.
        dst (str): Output path; ``{'params': state_dict}`` is written there.
        net (nn.Module): Network the weights must fit (its configuration is checked).
        overwrite (bool): Replace an existing ``dst``.

    Returns:
        OrderedDict[str, Tensor]: The converted weights.
    """
    check_outputs(files=[dst], overwrite=overwrite, inputs=[src])  # not over the source, a folder or a link
    checkpoint = read_checkpoint(src, weights=True)
    if not is_official_checkpoint(checkpoint):
        raise CheckpointError(f'Checkpoint {src!r} is not in the official format (no state_dict); '
                              f'found keys {sorted(checkpoint) if isinstance(checkpoint, dict) else "none"}.')
    arch = type(net).__name__
    state_dict = convert_official_state_dict(checkpoint['state_dict'], official_key_rules(net))
    check_state_dict(net.state_dict(), state_dict, src, arch)
    check_finite(state_dict, src)
    atomic_torch_save({'params': state_dict}, dst)
    return state_dict
