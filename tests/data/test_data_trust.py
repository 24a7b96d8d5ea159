"""Data that would give silently wrong results is refused or flagged, and preparing data never loses any.

Natural frame order, incomplete GOPRO sequences, holes in the numbering, corrupt LMDB files and
tables, all-or-nothing conversion, and tools/check_data.py listing every problem at once.
"""
import os
import shutil

import cv2
import numpy as np
import pytest
import yaml

from memdeblur.utils.errors import DataError
from memdeblur.data.prepare import write_basicsr_lmdb, write_estrnn_lmdb
from memdeblur.data.video_sources import build_video_source
from tests.pipeline_helpers import run_tool


@pytest.fixture
def split(synthetic_gopro, tmp_path):
    """A private copy of the synthetic train split (2 sequences of 8 frames)."""
    root = tmp_path / 'train'
    shutil.copytree(synthetic_gopro / 'train', root)
    return root


def sequences(root):
    return sorted(p for p in root.iterdir() if p.is_dir())


def renumber(seq_dir, names):
    """Rename the frames of every frame folder of a sequence to ``names`` (in their current order)."""
    for sub in seq_dir.iterdir():
        files = sorted(sub.iterdir())
        temporary = [f.rename(f.with_name(f'tmp_{i}.png')) for i, f in enumerate(files)]
        for f, name in zip(temporary, names):
            f.rename(f.with_name(f'{name}.png'))


def test_frames_numbered_without_zero_padding_keep_their_order_in_every_layout(split, tmp_path):
    """1.png ... 8.png would sort 1, 2, ..., and 10 before 2 with more frames: here 8..15 cross the digit count."""
    names = [str(i) for i in range(8, 16)]
    seq = sequences(split)[0]
    originals = [cv2.imread(str(f)) for f in sorted((seq / 'blur').iterdir())]
    renumber(seq, names)
    folder = build_video_source({'dataroot': str(split), 'layout': 'gopro'})
    assert folder.sequences[0].frame_names == names
    assert np.array_equal(folder.read(0, 2)[0], originals[2][..., ::-1] / np.float32(255))
    write_basicsr_lmdb(str(split), str(tmp_path / 'lmdb'), blur_dirs=('blur', ))
    lmdb_source = build_video_source({'dataroot': str(tmp_path / 'lmdb'), 'layout': 'lmdb'})
    assert lmdb_source.sequences[0].frame_names == names
    assert np.array_equal(lmdb_source.read(0, 2)[0], folder.read(0, 2)[0])
    write_estrnn_lmdb(str(split), str(tmp_path / 'estrnn'), 'syn', 'train', blur_dir='blur')
    estrnn = build_video_source({'dataroot': str(tmp_path / 'estrnn'), 'layout': 'estrnn_lmdb', 'lmdb_name': 'syn',
                                 'split': 'train'})
    assert estrnn.sequences[0].frame_names == names
    assert np.array_equal(estrnn.read(0, 2)[0], folder.read(0, 2)[0])


def test_a_sequence_without_the_chosen_blur_folder_is_named_or_skipped_on_request(split, basicsr_log):
    victim = sequences(split)[1]
    shutil.rmtree(victim / 'blur_gamma')
    with pytest.raises(DataError, match=rf'lack a frame folder: {victim.name} \(no blur_gamma/\).*skip_incomplete'):
        build_video_source({'dataroot': str(split), 'layout': 'gopro', 'blur_dir': 'blur_gamma'})
    source = build_video_source({'dataroot': str(split), 'layout': 'gopro', 'blur_dir': 'blur_gamma',
                                 'skip_incomplete': True})
    assert [s.name for s in source.sequences] == [sequences(split)[0].name]
    assert any(f'skipping 1 incomplete sequence(s) (skip_incomplete): {victim.name} (no blur_gamma/)' in m
               for m in basicsr_log)
    assert len(build_video_source({'dataroot': str(split), 'layout': 'gopro', 'blur_dir': 'blur'}).sequences) == 2


def test_a_frame_missing_on_both_sides_is_warned_about(split, basicsr_log):
    seq = sequences(split)[0]
    numbers = [int(f.stem) for f in sorted((seq / 'sharp').iterdir())]
    for sub in seq.iterdir():
        sorted(sub.iterdir())[4].unlink()
    source = build_video_source({'dataroot': str(split), 'layout': 'gopro'})
    assert len(source.sequences[0]) == 7
    jump = f'Sequence {seq.name}: frame numbers jump from {numbers[3]} to {numbers[5]}'
    assert any(jump in m for m in basicsr_log), basicsr_log
    assert not any(sequences(split)[1].name in m for m in basicsr_log)


def test_truncated_lmdb_garbage_meta_info_and_garbage_table_name_the_file(split, tmp_path):
    write_basicsr_lmdb(str(split), str(tmp_path / 'lmdb'), blur_dirs=('blur', ))
    opt = {'dataroot': str(tmp_path / 'lmdb'), 'layout': 'lmdb'}
    data_file = tmp_path / 'lmdb' / 'sharp.lmdb' / 'data.mdb'
    intact = data_file.read_bytes()
    with open(data_file, 'r+b') as f:
        f.truncate(len(intact) // 2)
    with pytest.raises(DataError, match=r'sharp.lmdb/data.mdb is truncated: \d+ bytes, but its header needs \d+'):
        build_video_source(opt)
    data_file.write_bytes(intact[:1000])
    with pytest.raises(DataError, match=r'LMDB .*sharp.lmdb cannot be opened'):
        build_video_source(opt)
    data_file.write_bytes(intact)
    meta = tmp_path / 'lmdb' / 'blur.lmdb' / 'meta_info.txt'
    meta.write_bytes(os.urandom(64) + b'\xff\xfe')
    with pytest.raises(DataError, match=r'blur.lmdb/meta_info.txt is not a text file'):
        build_video_source(opt)

    paths = write_estrnn_lmdb(str(split), str(tmp_path / 'estrnn'), 'syn', 'train')
    with open(paths[2], 'wb') as f:
        f.write(b'\x80\x04garbage' + os.urandom(32))
    with pytest.raises(DataError, match=r'syn_info_train.pkl cannot be read as an ESTRNN sequence table'):
        build_video_source({'dataroot': str(tmp_path / 'estrnn'), 'layout': 'estrnn_lmdb', 'lmdb_name': 'syn',
                            'split': 'train'})


def test_prepare_force_keeps_the_old_outputs_when_a_frame_is_corrupt(split, tmp_path):
    """--force builds into temporary siblings: a corrupt frame half-way leaves the old LMDBs as they were."""
    src = tmp_path / 'GOPRO'
    src.mkdir()
    split.rename(src / 'train')
    dst = tmp_path / 'out'
    first = run_tool('prepare_gopro.py', str(src), str(dst), '--format', 'lmdb', '--splits', 'train')
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in sorted(dst.rglob('*')) if p.is_file()}
    victim = sorted((sequences(src / 'train')[1] / 'sharp').iterdir())[5]
    victim.write_bytes(victim.read_bytes()[:200])  # header intact, pixels cut off
    again = run_tool('prepare_gopro.py', str(src), str(dst), '--format', 'lmdb', '--splits', 'train',
                     '--force')
    assert again.returncode != 0 and f'{victim}' in again.stderr and 'unreadable or corrupt' in again.stderr
    after = {p: p.read_bytes() for p in sorted(dst.rglob('*')) if p.is_file()}
    assert after == before  # nothing replaced, nothing partial left beside it
    assert build_video_source({'dataroot': str(dst / 'train'), 'layout': 'lmdb'}).read(1, 5)


def test_check_data_reports_every_problem_at_once(split, tmp_path):
    seq_a, seq_b = sequences(split)
    truncated = sorted((seq_a / 'blur_gamma').iterdir())[2]
    truncated.write_bytes(truncated.read_bytes()[:300])
    transparent = sorted((seq_b / 'sharp').iterdir())[6]
    image = cv2.imread(str(transparent))
    alpha = np.full(image.shape[:2], 255, np.uint8)
    alpha[0, 0] = 0
    cv2.imwrite(str(transparent), np.dstack([image, alpha]))
    test_root = tmp_path / 'test'
    shutil.copytree(split, test_root)
    missing = sorted((sequences(test_root)[0] / 'sharp').iterdir())[3]
    missing.unlink()
    shutil.rmtree(sequences(test_root)[1] / 'blur_gamma')
    opt = {'datasets': {
        'train': {'name': 'train', 'type': 'VideoDeblurDataset', 'dataroot': str(split), 'layout': 'gopro',
                  'blur_dir': 'blur_gamma', 'num_frame': 4, 'gt_size': 32},
        'val': {'name': 'val', 'type': 'VideoDeblurTestDataset', 'dataroot': str(test_root), 'layout': 'gopro',
                'blur_dir': 'blur_gamma'}}}
    opt_path = tmp_path / 'options.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    result = run_tool('check_data.py', '-opt', str(opt_path), '--no-progress')
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f'Frame {truncated} is unreadable or corrupt' in out
    assert f'Frame {transparent} has a transparent alpha channel' in out
    assert f"without a sharp frame: ['{missing.name}']" in out
    assert f'lack a frame folder: {sequences(test_root)[1].name} (no blur_gamma/)' in out
    assert out.count('  - ') == 4, out  # two bad frames in train; two bad sequences in val, left out of decoding
    assert 'problem(s) found' in out


def test_check_data_passes_clean_data_and_reports_option_typos(synthetic_gopro, tmp_path):
    opt = {'datasets': {'val': {'name': 'val', 'type': 'VideoDeblurTestDataset', 'layout': 'gopro',
                                'dataroot': str(synthetic_gopro / 'test')}}}
    opt_path = tmp_path / 'clean.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    clean = run_tool('check_data.py', '-opt', str(opt_path), '--no-progress')
    assert clean.returncode == 0 and '1 sequences, 8 frames: OK' in clean.stdout, clean.stdout + clean.stderr
    opt['datasets']['val']['num_fram'] = 4
    opt_path.write_text(yaml.safe_dump(opt))
    typo = run_tool('check_data.py', '-opt', str(opt_path), '--no-progress')
    assert typo.returncode == 1 and "unknown option 'num_fram'; did you mean 'num_frame'?" in typo.stdout


def test_check_data_finds_a_corrupt_lmdb_value(split, tmp_path):
    import lmdb
    write_basicsr_lmdb(str(split), str(tmp_path / 'lmdb'), blur_dirs=('blur', ))
    seq = sequences(split)[1].name
    key = f'{seq}/{build_video_source({"dataroot": str(split), "layout": "gopro"}).sequences[1].frame_names[3]}'
    with lmdb.open(str(tmp_path / 'lmdb' / 'blur.lmdb')) as env, env.begin(write=True) as txn:
        txn.put(key.encode(), b'\x89PNG\r\n\x1a\n' + os.urandom(64))
    opt = {'datasets': {'val': {'name': 'val', 'type': 'VideoDeblurTestDataset', 'layout': 'lmdb',
                                'dataroot': str(tmp_path / 'lmdb')}}}
    opt_path = tmp_path / 'lmdb.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    result = run_tool('check_data.py', '-opt', str(opt_path), '--no-progress')
    assert result.returncode == 1 and f'Frame {key} in ' in result.stdout and 'unreadable or corrupt' in result.stdout
