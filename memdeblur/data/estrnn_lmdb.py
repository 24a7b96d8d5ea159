"""The LMDB format shipped with ESTRNN and the MemDeblur repository (``gopro_ds_*``, ``gopro_ori_*``).

One folder holds, for a data set ``name`` (e.g. ``gopro_ds``) and a split (e.g. ``train``):

* ``{name}_{split}/``: LMDB of blurry frames;
* ``{name}_{split}_gt/``: LMDB of sharp frames;
* ``{name}_info_{split}.pkl``: the sequence table ``{'num': n, 'length': total frames,
  0: {'length': frames of sequence 0}, 1: {...}, ...}``.

Keys are ``'%03d_%08d' % (sequence index, frame index)`` and values the raw H x W x 3 uint8
BGR pixels, with H and W fixed per data set (540x960 downsampled, 720x1280 original). Two
traps: sequence indices follow the order the writer happened to list folders in (unsorted),
so only the table maps indices to sequences; and frame indices need not start at 0, so the
first key of each sequence gives the offset. Tables written by ``tools/prepare_gopro.py``
also carry each sequence's ``name``, ``frame_names``, ``height`` and ``width``.
"""
import os.path as osp
import pickle

from memdeblur.utils.errors import DataError
from memdeblur.utils.outputs import plain_name_problem
from memdeblur.utils.safe_load import load_plain_pickle

# Frame sizes of the published LMDBs, for tables that do not record them.
KNOWN_FRAME_SIZES = ((540, 960), (720, 1280))


def frame_key(seq_idx, frame_idx):
    """LMDB key of one frame."""
    return f'{seq_idx:03d}_{frame_idx:08d}'.encode()


def lmdb_paths(root, name, split):
    """(blurry LMDB, sharp LMDB, sequence table) paths for a data set name and split."""
    return (osp.join(root, f'{name}_{split}'), osp.join(root, f'{name}_{split}_gt'),
            osp.join(root, f'{name}_info_{split}.pkl'))


def read_sequence_table(path):
    """The per-sequence entries of a table, in index order: a list of dicts with at least ``length``.

    The pickle is read with ``safe_load.TableUnpickler``: plain containers, strings and numbers only,
    so a crafted table cannot run code. Sequence and frame names become output paths: they must be
    plain names.
    """
    try:
        table = load_plain_pickle(path)
    except Exception as err:  # a corrupt pickle raises many types (UnpicklingError, EOFError, ValueError, ...)
        raise DataError(f'{path} cannot be read as an ESTRNN sequence table (a pickle): '
                        f'{type(err).__name__}: {err}') from err
    if not isinstance(table, dict) or 'num' not in table:
        raise DataError(f'{path} is not an ESTRNN sequence table (a dict with "num" and one entry per sequence).')
    if not isinstance(table['num'], int) or table['num'] < 0:
        raise DataError(f'{path}: "num" must be the number of sequences, got {table["num"]!r}.')
    missing = [i for i in range(table['num'])
               if not isinstance(table.get(i), dict) or not isinstance(table[i].get('length'), int)]
    if missing:
        raise DataError(f'{path}: sequence table lacks entries (with an integer "length") for indices {missing[:10]}.')
    entries = [table[i] for i in range(table['num'])]
    for index, entry in enumerate(entries):
        names = [entry['name']] if 'name' in entry else []
        for name in names + list(entry.get('frame_names') or []):
            if plain_name_problem(name):
                raise DataError(f'{path}: sequence {index} names {name!r}, which becomes a file or folder name, but '
                                f'{plain_name_problem(name)}.')
    return entries


def write_sequence_table(path, entries):
    """Write a table in the ESTRNN layout from a list of per-sequence dicts (each with ``length``)."""
    table = {i: entry for i, entry in enumerate(entries)}
    table.update(num=len(entries), length=sum(e['length'] for e in entries))
    with open(path, 'wb') as f:
        pickle.dump(table, f)


def first_frame_index(txn, seq_idx):
    """Smallest frame index stored for a sequence (the offset), or None when it has no key."""
    prefix = f'{seq_idx:03d}_'.encode()
    cursor = txn.cursor()
    if not cursor.set_range(prefix) or not cursor.key().startswith(prefix):
        return None
    return int(cursor.key()[len(prefix):])


def infer_frame_size(num_bytes, source):
    """(H, W) of a raw frame from its byte count, for tables that do not record the size."""
    for height, width in KNOWN_FRAME_SIZES:
        if num_bytes == height * width * 3:
            return height, width
    raise DataError(f'{source}: frames of {num_bytes} bytes match no known size {KNOWN_FRAME_SIZES}; '
                     'set frame_size: [H, W] in the dataset options.')
