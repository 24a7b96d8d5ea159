"""Converting a GOPRO_Large-layout folder into the other forms users train from.

* BasicSR LMDBs (``<out>/<split>/{blur,blur_gamma,sharp}.lmdb``, keys ``<SEQ>/<frame>``),
  written with BasicSR's ``LmdbMaker``;
* the ESTRNN/MemDeblur LMDB (``memdeblur.data.estrnn_lmdb``);
* a GOPRO_Large-layout folder, useful with downsampling.

Downsampling resizes every frame to a given size with area interpolation (the right filter
for shrinking); "downsampled GOPRO" is 960x540 from ``blur_gamma``. Outputs are never
overwritten unless ``overwrite`` is set, and never when they are, contain or lie inside the
source. Everything is written into temporary siblings of the outputs and swapped in only when
the whole conversion succeeded (``memdeblur.utils.outputs.staged_outputs``), so a corrupt frame
half-way (or a kill) leaves existing outputs untouched and no partial ones behind.
"""
import os
import os.path as osp

import cv2
import lmdb
from basicsr.utils.lmdb_util import LmdbMaker
from tqdm import tqdm

from memdeblur.data import estrnn_lmdb
from memdeblur.data.video_sources import FolderVideoSource
from memdeblur.media.images import read_frame, to_integer_image, write_png
from memdeblur.media.layouts import FOLDER_LAYOUTS
from memdeblur.utils.outputs import staged_outputs


def load_uint8_bgr(path, size=None):
    """A frame as uint8 BGR (OpenCV's order, which both LMDB formats store), optionally resized to (H, W)."""
    image = to_integer_image(read_frame(path)[..., ::-1])
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return image


def _frames(source, side):
    """(sequence index, frame index, path) of every blurry (side 0) or sharp (side 1) frame."""
    for seq_idx, seq in enumerate(source.sequences):
        for frame_idx in range(len(seq)):
            yield seq_idx, frame_idx, source.frame_paths(seq_idx, frame_idx)[side]


def _count(source):
    return sum(len(seq) for seq in source.sequences)


def write_basicsr_lmdb(split_root, out_split_root, blur_dirs=('blur', 'blur_gamma'), size=None, overwrite=False,
                       compress_level=1):
    """BasicSR LMDBs of one split: one per blurry folder plus ``sharp.lmdb``.

    Args:
        split_root (str): e.g. ``GOPRO_Large/train``.
        out_split_root (str): Folder receiving ``<blur_dir>.lmdb`` and ``sharp.lmdb``.
        blur_dirs (tuple[str]): Blurry folders to convert.
        size (tuple[int, int] | None): Resize every frame to (H, W).
        overwrite (bool): Replace existing outputs.
        compress_level (int): PNG compression inside the LMDB.

    Returns:
        list[str]: The LMDB folders written.
    """
    sources = {d: FolderVideoSource(split_root, 'gopro', d) for d in blur_dirs}
    jobs = [(f'{d}.lmdb', source, 0) for d, source in sources.items()]
    jobs.append(('sharp.lmdb', sources[blur_dirs[0]], 1))
    written = [osp.join(out_split_root, name) for name, _, _ in jobs]
    with staged_outputs(folders=written, overwrite=overwrite, inputs=[split_root], tool='tools/prepare_gopro.py'
                        ) as staging:
        for lmdb_path, (name, source, side) in zip(written, jobs):
            maker = LmdbMaker(staging[lmdb_path], compress_level=compress_level)
            for seq_idx, frame_idx, path in tqdm(_frames(source, side), total=_count(source), desc=name,
                                                 unit='frame'):
                image = load_uint8_bgr(path, size)
                _, encoded = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
                seq = source.sequences[seq_idx]
                maker.put(encoded.tobytes(), f'{seq.name}/{seq.frame_names[frame_idx]}', image.shape)
            maker.close()
    return written


def write_estrnn_lmdb(split_root, out_root, name, split, blur_dir='blur_gamma', size=None, overwrite=False):
    """The ESTRNN-style LMDB pair and sequence table of one split.

    Sequences are indexed in sorted name order; the table records each one's name, frame names
    and frame size beside the ``length`` that ESTRNN's own loader reads.

    Returns:
        list[str]: The paths written (blurry LMDB, sharp LMDB, table).
    """
    source = FolderVideoSource(split_root, 'gopro', blur_dir)
    paths = estrnn_lmdb.lmdb_paths(out_root, name, split)
    entries = []
    for seq in source.sequences:
        height, width = size if size is not None else (seq.height, seq.width)
        entries.append({'length': len(seq), 'name': seq.name, 'frame_names': list(seq.frame_names),
                        'height': height, 'width': width})
    map_size = 2 * sum(e['length'] * e['height'] * e['width'] * 3 for e in entries) + (1 << 20)
    with staged_outputs(files=paths[2:], folders=paths[:2], overwrite=overwrite, inputs=[split_root],
                        tool='tools/prepare_gopro.py') as staging:
        for side, lmdb_path in enumerate(paths[:2]):
            with lmdb.open(staging[lmdb_path], map_size=map_size) as env, env.begin(write=True) as txn:
                for seq_idx, frame_idx, path in tqdm(_frames(source, side), total=_count(source),
                                                     desc=osp.basename(lmdb_path), unit='frame'):
                    txn.put(estrnn_lmdb.frame_key(seq_idx, frame_idx), load_uint8_bgr(path, size).tobytes())
        estrnn_lmdb.write_sequence_table(staging[paths[2]], entries)
    return list(paths)


def write_gopro_folder(split_root, out_split_root, blur_dirs=('blur_gamma', ), size=None, overwrite=False):
    """A GOPRO_Large-layout copy of one split with (optionally) resized frames.

    Returns:
        list[str]: The sequence folders written.
    """
    sources = {d: FolderVideoSource(split_root, 'gopro', d) for d in blur_dirs}
    first = sources[blur_dirs[0]]
    written = [osp.join(out_split_root, seq.name) for seq in first.sequences]
    jobs = [(d, source, 0) for d, source in sources.items()] + [(FOLDER_LAYOUTS['gopro'].sharp, first, 1)]
    with staged_outputs(folders=written, overwrite=overwrite, inputs=[split_root], tool='tools/prepare_gopro.py'
                        ) as staging:
        for folder, source, side in jobs:
            for seq_idx, frame_idx, path in tqdm(_frames(source, side), total=_count(source), desc=folder,
                                                 unit='frame'):
                seq = source.sequences[seq_idx]
                out_dir = osp.join(staging[osp.join(out_split_root, seq.name)], folder)
                os.makedirs(out_dir, exist_ok=True)
                write_png(osp.join(out_dir, seq.frame_names[frame_idx] + '.png'), load_uint8_bgr(path, size))
    return written
