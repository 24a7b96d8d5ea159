"""Where blurry/sharp video frames come from: image folders, BasicSR LMDBs or the ESTRNN LMDB.

A source lists its sequences (``sequences``: name, frame names, frame size) and reads one
blurry/sharp pair as (H, W, 3) float32 RGB arrays in [0, 1] (``read``). Everything that can be
checked without decoding every frame is checked when the source is built, so bad data fails at
start-up with the sequence and frame named, not hours into training:

* folders: sequences lacking the blurry or sharp folder (``skip_incomplete: true`` skips them,
  listed in the log), missing or extra frames on either side, count mismatches, unreadable
  headers, blurry/sharp or in-sequence size mismatches (of frames as read: upright by their EXIF orientation);
* LMDBs: truncated ``data.mdb``, unreadable ``meta_info.txt`` or sequence tables, missing keys,
  wrong byte counts, sequence tables that disagree with the database.

Frame and sequence names are ordered naturally (``2`` before ``10``), and a hole in a
sequence's frame numbering (a frame missing on both sides) is logged as a warning.

Layouts (``layout`` option; the folder layouts are ``memdeblur.media.layouts.FOLDER_LAYOUTS``, where the video tool
looks for a sequence's blurry frames too):

===============  ==============================================================
``gopro``        ``<dataroot>/<SEQ>/{blur|blur_gamma}/*.png`` + ``<SEQ>/sharp/*.png``
``bsd``          ``<dataroot>/<SEQ>/Blur/RGB/*`` + ``<SEQ>/Sharp/RGB/*``
``dvd``          ``<dataroot>/<SEQ>/input/*`` + ``<SEQ>/GT/*``
``lmdb``         ``<dataroot>/{blur_dir}.lmdb`` + ``<dataroot>/sharp.lmdb`` (BasicSR
                 LMDBs with keys ``<SEQ>/<frame>``, as ``tools/prepare_gopro.py`` writes)
``estrnn_lmdb``  ``<dataroot>/{lmdb_name}_{split}[_gt]`` + ``{lmdb_name}_info_{split}.pkl``
===============  ==============================================================
"""
import os
import os.path as osp
from dataclasses import dataclass

import numpy as np
from basicsr.utils import FileClient, get_root_logger

from memdeblur.data import estrnn_lmdb
from memdeblur.data.lmdb_files import open_lmdb_readonly
from memdeblur.media.frame_names import natural_sorted, numbering_gaps
from memdeblur.media.images import decode_frame, frame_header, list_frame_files, read_frame, size_mismatch, \
    to_float_rgb
from memdeblur.media.layouts import FOLDER_LAYOUTS
from memdeblur.utils.errors import DataError, FrameError
from memdeblur.utils.option_check import BOOL, INT_LIST, STR, one_of, optional
from memdeblur.utils.outputs import plain_name_problem

LAYOUTS = tuple(FOLDER_LAYOUTS) + ('lmdb', 'estrnn_lmdb')
GOPRO_BLUR_DIRS = FOLDER_LAYOUTS['gopro'].blurry  # what blur_dir names: GOPRO's blurry folder, or a BasicSR LMDB's

# The options of ``build_video_source``, for the datasets' option checks.
SOURCE_OPTIONS = {
    'dataroot': STR,
    'layout': one_of(*LAYOUTS),
    'blur_dir': one_of(*GOPRO_BLUR_DIRS),
    'lmdb_name': STR,
    'split': STR,
    'frame_size': optional(INT_LIST),
    'skip_incomplete': BOOL,
}


@dataclass
class SequenceInfo:
    """One video sequence: its name, frame names (without extension) in temporal order, frame size."""

    name: str
    frame_names: list
    height: int
    width: int

    def __len__(self):
        return len(self.frame_names)


def build_video_source(opt, on_error=None):
    """Build the source an options dict asks for (keys: ``dataroot``, ``layout``, ``blur_dir``, ...).

    Args:
        opt (dict): Dataset options (``SOURCE_OPTIONS``).
        on_error (callable | None): For folder layouts, called with each sequence's ``DataError``
            (that sequence is then left out) instead of raising the first one; for checking tools.
    """
    layout = opt.get('layout', 'gopro')
    dataroot = opt.get('dataroot')
    if layout not in LAYOUTS:
        raise DataError(f'Unknown layout {layout!r}; choose one of {LAYOUTS}.')
    if not dataroot or not osp.isdir(dataroot):
        raise DataError(f'dataroot {dataroot!r} is not a folder (layout {layout}).')
    if layout in FOLDER_LAYOUTS:
        return FolderVideoSource(dataroot, layout, opt.get('blur_dir', 'blur'), opt.get('skip_incomplete', False),
                                 on_error)
    if layout == 'lmdb':
        return BasicsrLmdbVideoSource(dataroot, opt.get('blur_dir', 'blur'))
    return EstrnnLmdbVideoSource(dataroot, opt.get('lmdb_name', 'gopro_ds'), opt.get('split', 'train'),
                                 opt.get('frame_size'))


def warn_numbering_gaps(sequence, frame_names, where):
    """Log a warning for each hole in a sequence's frame numbering (a frame missing on both sides)."""
    for before, after in numbering_gaps(frame_names):
        get_root_logger().warning(f'Sequence {sequence}: frame numbers jump from {before} to {after} in {where} '
                                  f'(frames missing on both sides?); clips across the jump join frames that are '
                                  f'not consecutive.')


class FolderVideoSource:
    """Frames stored as image files, one folder per sequence (GOPRO_Large, BSD, DVD).

    Args:
        dataroot (str): Folder holding one subfolder per sequence (e.g. ``GOPRO_Large/train``).
        layout (str): ``gopro``, ``bsd`` or ``dvd``.
        blur_dir (str): GOPRO's blurry folder, ``blur`` or ``blur_gamma``.
        skip_incomplete (bool): Leave out (with a warning) sequences lacking the blurry or sharp
            folder instead of refusing the data set.
        on_error (callable | None): Called with each sequence's ``DataError``, that sequence then
            left out, instead of raising the first one.
    """

    def __init__(self, dataroot, layout='gopro', blur_dir='blur', skip_incomplete=False, on_error=None):
        folders = FOLDER_LAYOUTS[layout]
        lq_sub = folders.blurry[0]
        if len(folders.blurry) > 1:
            if blur_dir not in folders.blurry:
                choices = ' or '.join(f'"{sub}"' for sub in folders.blurry)
                raise DataError(f'blur_dir must be {choices}, got {blur_dir!r}.')
            lq_sub = blur_dir
        self.dataroot, self.lq_sub, self.gt_sub = dataroot, lq_sub, folders.sharp
        names = self._sequence_folders(dataroot, layout, skip_incomplete, on_error)
        self.sequences, self.frame_files = [], []
        for name in names:
            try:
                info, files = self._scan_sequence(name)
            except DataError as err:
                if on_error is None:
                    raise
                on_error(err)
                continue
            self.sequences.append(info)
            self.frame_files.append(files)

    def _sequence_folders(self, dataroot, layout, skip_incomplete, on_error):
        """Names of the sequence folders: every subfolder holding one of the layout's frame folders.

        A sequence lacking the blurry or the sharp folder is an error naming it (a GOPRO sequence
        without ``blur_gamma`` would otherwise vanish from a table without a word), or is skipped
        with a warning when ``skip_incomplete`` is set.
        """
        layout_dirs = {self.gt_sub, *FOLDER_LAYOUTS[layout].blurry}
        folders = natural_sorted(d for d in os.listdir(dataroot)
                                 if not d.startswith('.') and osp.isdir(osp.join(dataroot, d)))
        sequences = [d for d in folders if any(osp.isdir(osp.join(dataroot, d, sub)) for sub in layout_dirs)]
        incomplete = [
            f'{d} (no {sub}/)' for d in sequences for sub in (self.lq_sub, self.gt_sub)
            if not osp.isdir(osp.join(dataroot, d, sub))
        ]
        if incomplete and not skip_incomplete:
            error = DataError(f'{dataroot}: {len(incomplete)} sequence(s) lack a frame folder: '
                              f'{", ".join(incomplete)}. Set skip_incomplete: true in the dataset options to leave '
                              'them out.')
            if on_error is None:
                raise error
            on_error(error)
        elif incomplete:
            get_root_logger().warning(f'{dataroot}: skipping {len(incomplete)} incomplete sequence(s) '
                                      f'(skip_incomplete): {", ".join(incomplete)}.')
        complete = [d for d in sequences if all(osp.isdir(osp.join(dataroot, d, sub)) for sub in (self.lq_sub,
                                                                                                  self.gt_sub))]
        if not complete:
            raise DataError(f'No sequences found in {dataroot} for layout {layout}: expected '
                            f'<SEQ>/{self.lq_sub}/ and <SEQ>/{self.gt_sub}/ folders of frames.')
        return complete

    def frame_paths(self, seq_idx, frame_idx):
        """(blurry path, sharp path) of one frame."""
        seq = self.sequences[seq_idx]
        file_name = self.frame_files[seq_idx][frame_idx]
        return (osp.join(self.dataroot, seq.name, self.lq_sub, file_name),
                osp.join(self.dataroot, seq.name, self.gt_sub, file_name))

    def _scan_sequence(self, name):
        lq_dir, gt_dir = osp.join(self.dataroot, name, self.lq_sub), osp.join(self.dataroot, name, self.gt_sub)
        lq_frames, gt_frames = list_frame_files(lq_dir), list_frame_files(gt_dir)
        if not lq_frames:
            raise DataError(f'Sequence {name}: no frames in {lq_dir}.')
        missing_gt = sorted(set(lq_frames) - set(gt_frames))
        missing_lq = sorted(set(gt_frames) - set(lq_frames))
        if missing_gt or missing_lq:
            raise DataError(f'Sequence {name}: {len(lq_frames)} blurry frames in {lq_dir} but {len(gt_frames)} sharp '
                            f'frames in {gt_dir}; without a sharp frame: {missing_gt[:5]}, '
                            f'without a blurry frame: {missing_lq[:5]}.')
        first = None
        for frame in lq_frames:
            for path in (osp.join(lq_dir, frame), osp.join(gt_dir, frame)):
                header = frame_header(path)  # the size once upright, as the frame is read
                if first is None:
                    first = path, header
                elif header[:2] != first[1][:2]:
                    raise DataError(f'Sequence {name}: {size_mismatch(path, header, *first)}')
        stems = [osp.splitext(f)[0] for f in lq_frames]
        if len(set(stems)) != len(stems):
            raise DataError(f'Sequence {name}: frame names in {lq_dir} repeat with different extensions.')
        warn_numbering_gaps(name, stems, f'{lq_dir} and {gt_dir}')
        return SequenceInfo(name, stems, *first[1][:2]), lq_frames

    def read(self, seq_idx, frame_idx):
        """Blurry and sharp frame as (H, W, 3) float32 RGB in [0, 1]."""
        lq_path, gt_path = self.frame_paths(seq_idx, frame_idx)
        return read_frame(lq_path), read_frame(gt_path)


class BasicsrLmdbVideoSource:
    """BasicSR LMDBs (``make_lmdb_from_imgs``) of blurry and sharp frames with keys ``<SEQ>/<frame>``.

    Args:
        dataroot (str): Folder holding ``{blur_dir}.lmdb`` and ``sharp.lmdb``.
        blur_dir (str): Name of the blurry LMDB (``blur`` or ``blur_gamma``).
    """

    def __init__(self, dataroot, blur_dir='blur'):
        self.db_paths = [osp.join(dataroot, f'{blur_dir}.lmdb'), osp.join(dataroot, 'sharp.lmdb')]
        lq_meta, gt_meta = (self._read_meta(path) for path in self.db_paths)
        if list(lq_meta) != list(gt_meta):
            only_lq = sorted(set(lq_meta) - set(gt_meta))[:5]
            only_gt = sorted(set(gt_meta) - set(lq_meta))[:5]
            raise DataError(f'{self.db_paths[0]} and {self.db_paths[1]} hold different frames: only blurry '
                            f'{only_lq}, only sharp {only_gt}.')
        frames_by_seq = {}
        for key, shape in lq_meta.items():
            if shape != gt_meta[key]:
                raise DataError(f'Frame {key}: blurry {shape} but sharp {gt_meta[key]} in {self.db_paths}.')
            seq, frame = key.rsplit('/', 1)
            frames_by_seq.setdefault(seq, []).append((frame, shape))
        self.sequences = []
        for seq, frames in frames_by_seq.items():
            shapes = {shape for _, shape in frames}
            if len(shapes) > 1:
                raise DataError(f'Sequence {seq} in {self.db_paths[0]} mixes frame sizes {sorted(shapes)}.')
            height, width = shapes.pop()
            frame_names = natural_sorted(f for f, _ in frames)
            warn_numbering_gaps(seq, frame_names, self.db_paths[0])
            self.sequences.append(SequenceInfo(seq, frame_names, height, width))
        self._check_keys_exist(list(lq_meta))
        self._client = None

    @staticmethod
    def _read_meta(db_path):
        meta_path = osp.join(db_path, 'meta_info.txt')
        if not osp.isfile(meta_path):
            raise DataError(f'{db_path} is not a BasicSR LMDB: {meta_path} is missing.')
        meta = {}
        with open(meta_path, 'rb') as f:
            data = f.read()
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError as err:
            raise DataError(f'{meta_path} is not a text file (byte {err.start} is not UTF-8): a corrupt copy? '
                            'Write the LMDB again with tools/prepare_gopro.py.') from err
        for line_no, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                key = osp.splitext(parts[0])[0]
                height, width = (int(v) for v in parts[1].strip('()').split(',')[:2])
            except (IndexError, ValueError) as err:
                raise DataError(f'{meta_path}, line {line_no}: expected "<key>.png (h,w,c) <level>", got '
                                f'{line.strip()!r}.') from err
            if '/' not in key:
                raise DataError(f'{meta_path}, line {line_no}: key {key!r} is not <sequence>/<frame>.')
            for name in key.rsplit('/', 1):
                if plain_name_problem(name):
                    raise DataError(f'{meta_path}, line {line_no}: key {key!r} names {name!r}, which becomes a file '
                                    f'or folder name, but {plain_name_problem(name)}.')
            meta[key] = (height, width)
        if not meta:
            raise DataError(f'{meta_path} lists no frames.')
        return meta

    def _check_keys_exist(self, keys):
        for db_path in self.db_paths:
            with open_lmdb_readonly(db_path) as env, env.begin() as txn:
                for key in keys:
                    if txn.get(key.encode()) is None:
                        raise DataError(f'Frame {key}: key missing from {db_path} although its meta_info lists it.')

    def __getstate__(self):
        return {**self.__dict__, '_client': None}  # LMDB handles are opened anew in each worker

    def read(self, seq_idx, frame_idx):
        """Blurry and sharp frame as (H, W, 3) float32 RGB in [0, 1]."""
        if self._client is None:
            self._client = FileClient('lmdb', db_paths=self.db_paths, client_keys=['lq', 'gt'], readonly=True,
                                      lock=False, readahead=False)
        seq = self.sequences[seq_idx]
        key = f'{seq.name}/{seq.frame_names[frame_idx]}'
        return tuple(
            decode_frame(self._client.get(key, side), f'{key} in {path}')
            for side, path in zip(('lq', 'gt'), self.db_paths))


class EstrnnLmdbVideoSource:
    """The ESTRNN/MemDeblur LMDB (see ``memdeblur.data.estrnn_lmdb`` for the format).

    Args:
        dataroot (str): Folder holding the two LMDBs and the sequence table.
        name (str): Data set name, e.g. ``gopro_ds`` or ``gopro_ori``.
        split (str): e.g. ``train`` or ``valid``.
        frame_size (list[int] | None): (H, W), for tables that do not record it and frames of a
            size other than the published ones.
    """

    def __init__(self, dataroot, name='gopro_ds', split='train', frame_size=None):
        self.db_paths = list(estrnn_lmdb.lmdb_paths(dataroot, name, split))
        table_path = self.db_paths.pop()
        for path in self.db_paths + [table_path]:
            if not osp.exists(path):
                raise DataError(f'ESTRNN LMDB {name}_{split} in {dataroot}: {path} is missing.')
        table = estrnn_lmdb.read_sequence_table(table_path)
        self.sequences, self.offsets = [], []
        with open_lmdb_readonly(self.db_paths[0]) as lq_env, open_lmdb_readonly(self.db_paths[1]) as gt_env, \
                lq_env.begin() as lq_txn, gt_env.begin() as gt_txn:
            for seq_idx, entry in enumerate(table):
                self._add_sequence(seq_idx, entry, lq_txn, gt_txn, frame_size)
        self._envs = None

    def _add_sequence(self, seq_idx, entry, lq_txn, gt_txn, frame_size):
        name = entry.get('name', f'{seq_idx:03d}')
        offset = estrnn_lmdb.first_frame_index(lq_txn, seq_idx)
        if offset is None:
            raise DataError(f'Sequence {name} (index {seq_idx}): no frames in {self.db_paths[0]}.')
        first = lq_txn.get(estrnn_lmdb.frame_key(seq_idx, offset))
        if 'height' in entry:
            size = (entry['height'], entry['width'])
        elif frame_size:
            size = tuple(frame_size)
        else:
            size = estrnn_lmdb.infer_frame_size(len(first), self.db_paths[0])
        expected_bytes = size[0] * size[1] * 3
        for frame_idx in range(offset, offset + entry['length']):
            key = estrnn_lmdb.frame_key(seq_idx, frame_idx)
            for txn, path in ((lq_txn, self.db_paths[0]), (gt_txn, self.db_paths[1])):
                value = txn.get(key)
                if value is None:
                    raise DataError(f'Sequence {name}, frame {frame_idx}: key {key.decode()} missing from {path}.')
                if len(value) != expected_bytes:
                    raise DataError(f'Sequence {name}, frame {frame_idx}: {len(value)} bytes in {path}, expected '
                                    f'{expected_bytes} for {size[0]}x{size[1]}x3.')
        frame_names = entry.get('frame_names') or [f'{i:08d}' for i in range(offset, offset + entry['length'])]
        self.sequences.append(SequenceInfo(name, list(frame_names), *size))
        self.offsets.append(offset)

    def __getstate__(self):
        return {**self.__dict__, '_envs': None}  # LMDB handles are opened anew in each worker

    def read(self, seq_idx, frame_idx):
        """Blurry and sharp frame as (H, W, 3) float32 RGB in [0, 1]."""
        if self._envs is None:
            self._envs = [open_lmdb_readonly(p) for p in self.db_paths]
        seq = self.sequences[seq_idx]
        key = estrnn_lmdb.frame_key(seq_idx, self.offsets[seq_idx] + frame_idx)
        frames = []
        for env, path in zip(self._envs, self.db_paths):
            with env.begin() as txn:
                value = txn.get(key)
            if value is None:
                raise FrameError(f'Sequence {seq.name}: key {key.decode()} missing from {path}.')
            raw = np.frombuffer(value, np.uint8).reshape(seq.height, seq.width, 3)
            frames.append(to_float_rgb(raw, f'{key.decode()} in {path}', channel_order='bgr'))
        return tuple(frames)
