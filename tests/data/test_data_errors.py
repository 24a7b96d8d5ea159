"""Bad data fails early with a message naming the sequence, frame or file; odd formats are explicit."""
import pickle
import shutil

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.data import build_dataset

from memdeblur.data import estrnn_lmdb
from memdeblur.utils.errors import DataError, FrameError
from memdeblur.data.prepare import write_basicsr_lmdb, write_estrnn_lmdb
from memdeblur.data.video_sources import build_video_source


@pytest.fixture
def gopro(synthetic_gopro, tmp_path):
    """A private copy of the synthetic test split and its only sequence folder."""
    root = tmp_path / 'test'
    shutil.copytree(synthetic_gopro / 'test', root)
    seq = next(root.iterdir())
    return root, seq


def frames(folder):
    return sorted(folder.iterdir())


def build(root, **extra):
    return build_video_source({'dataroot': str(root), 'layout': 'gopro', **extra})


def test_missing_sharp_frame(gopro):
    root, seq = gopro
    victim = frames(seq / 'sharp')[3]
    victim.unlink()
    with pytest.raises(DataError, match=rf"Sequence {seq.name}: 8 blurry frames .* but 7 sharp frames .*without a "
                       rf"sharp frame: \['{victim.name}'\]"):
        build(root)


def test_extra_sharp_frame_is_a_count_mismatch(gopro):
    root, seq = gopro
    shutil.copy(frames(seq / 'sharp')[0], seq / 'sharp' / '999999.png')
    with pytest.raises(DataError, match=r"8 blurry frames .* but 9 sharp frames.*without a blurry frame: "
                       r"\['999999.png'\]"):
        build(root)


def test_size_mismatch_names_the_frame(gopro):
    root, seq = gopro
    victim = frames(seq / 'blur')[2]
    cv2.imwrite(str(victim), np.zeros((32, 48, 3), np.uint8))
    with pytest.raises(DataError, match=rf'{victim.name} is 32x48, but the sequence started at 64x96'):
        build(root)


def test_corrupt_header_fails_at_build_and_truncated_data_at_read(gopro):
    root, seq = gopro
    victim = frames(seq / 'sharp')[1]
    data = victim.read_bytes()
    victim.write_bytes(b'garbage' * 10)
    with pytest.raises(FrameError, match=rf'{victim}.* unreadable or corrupt'):
        build(root)
    victim.write_bytes(data[:len(data) // 2])
    source = build(root)
    with pytest.raises(FrameError, match=rf'{victim} is unreadable or corrupt'):
        source.read(0, 1)


def test_missing_root_empty_root_and_bad_options(tmp_path):
    with pytest.raises(DataError, match='nowhere.* is not a folder'):
        build(tmp_path / 'nowhere')
    with pytest.raises(DataError, match=r'No sequences found in .* expected <SEQ>/blur/ and <SEQ>/sharp/'):
        build(tmp_path)
    with pytest.raises(DataError, match='Unknown layout'):
        build(tmp_path, layout='gopr0')
    (tmp_path / 'SEQ' / 'blur_gama').mkdir(parents=True)
    with pytest.raises(DataError, match='blur_dir must be "blur" or "blur_gamma"'):
        build(tmp_path, blur_dir='blur_gama')


def test_sharp_folder_missing(gopro):
    root, seq = gopro
    shutil.rmtree(seq / 'sharp')
    with pytest.raises(DataError, match=rf'1 sequence\(s\) lack a frame folder: {seq.name} \(no sharp/\)'):
        build(root)


def test_sequence_shorter_than_a_clip_and_crop_larger_than_a_frame(gopro):
    root, seq = gopro
    opt = {'type': 'VideoDeblurDataset', 'phase': 'train', 'dataroot': str(root), 'layout': 'gopro', 'gt_size': 32}
    with pytest.raises(DataError, match=rf'Sequence {seq.name} has 8 frames, fewer than num_frame=10'):
        build_dataset({**opt, 'num_frame': 10})
    with pytest.raises(DataError, match=r'64x96 frames, smaller than gt_size=80'):
        build_dataset({**opt, 'num_frame': 4, 'gt_size': 80})


def test_missing_basicsr_lmdb_key(gopro, tmp_path):
    root, seq = gopro
    write_basicsr_lmdb(str(root), str(tmp_path / 'lmdb'), blur_dirs=('blur', ))
    key = f'{seq.name}/{frames(seq / "sharp")[5].stem}'
    with lmdb.open(str(tmp_path / 'lmdb' / 'sharp.lmdb')) as env, env.begin(write=True) as txn:
        txn.delete(key.encode())
    with pytest.raises(DataError, match=rf'Frame {key}: key missing from .*sharp.lmdb although its meta_info'):
        build_video_source({'dataroot': str(tmp_path / 'lmdb'), 'layout': 'lmdb'})
    with pytest.raises(DataError, match=r'blur_gamma.lmdb is not a BasicSR LMDB: .*meta_info.txt is missing'):
        build_video_source({'dataroot': str(tmp_path / 'lmdb'), 'layout': 'lmdb', 'blur_dir': 'blur_gamma'})


@pytest.fixture
def estrnn(gopro, tmp_path):
    root, seq = gopro
    write_estrnn_lmdb(str(root), str(tmp_path / 'estrnn'), 'gopro_syn', 'test')
    opt = {'dataroot': str(tmp_path / 'estrnn'), 'layout': 'estrnn_lmdb', 'lmdb_name': 'gopro_syn', 'split': 'test'}
    return opt, estrnn_lmdb.lmdb_paths(opt['dataroot'], 'gopro_syn', 'test')


def test_missing_estrnn_key_and_wrong_byte_count(estrnn, gopro):
    opt, (blur_path, gt_path, _) = estrnn
    with lmdb.open(gt_path) as env, env.begin(write=True) as txn:
        txn.delete(estrnn_lmdb.frame_key(0, 3))
    with pytest.raises(DataError, match=rf'Sequence {gopro[1].name}, frame 3: key 000_00000003 missing from .*_gt'):
        build_video_source(opt)
    with lmdb.open(gt_path) as env, env.begin(write=True) as txn:
        txn.put(estrnn_lmdb.frame_key(0, 3), b'\0' * 100)
    with pytest.raises(DataError, match=r'frame 3: 100 bytes in .* expected 18432 for 64x96x3'):
        build_video_source(opt)


def test_estrnn_missing_files_and_tables(estrnn, tmp_path):
    opt, (_, _, table_path) = estrnn
    with pytest.raises(DataError, match=r'gopro_syn_valid .* is missing'):
        build_video_source({**opt, 'split': 'valid'})
    with open(table_path, 'wb') as f:
        pickle.dump({'num': 2, 0: {'length': 8}}, f)
    with pytest.raises(DataError, match=r'lacks entries .* for indices \[1\]'):
        build_video_source(opt)


def test_legacy_estrnn_table_unsorted_with_frame_offset(tmp_path):
    """A table as ESTRNN writes it (lengths only) over keys that start at frame 5, sequences in any order."""
    rng = np.random.default_rng(0)
    pixels = {i: rng.integers(0, 256, (3, 16, 24, 3), np.uint8) for i in range(2)}
    paths = estrnn_lmdb.lmdb_paths(str(tmp_path), 'gopro_ds', 'train')
    for side, path in enumerate(paths[:2]):
        with lmdb.open(path, map_size=1 << 24) as env, env.begin(write=True) as txn:
            for seq_idx in (1, 0):
                for i in range(3):
                    txn.put(estrnn_lmdb.frame_key(seq_idx, 5 + i), (pixels[seq_idx][i] + side).tobytes())
    estrnn_lmdb.write_sequence_table(paths[2], [{'length': 3}, {'length': 3}])
    opt = {'dataroot': str(tmp_path), 'layout': 'estrnn_lmdb', 'lmdb_name': 'gopro_ds', 'split': 'train'}
    with pytest.raises(DataError, match='set frame_size'):
        build_video_source(opt)
    source = build_video_source({**opt, 'frame_size': [16, 24]})
    assert [s.frame_names for s in source.sequences] == [['00000005', '00000006', '00000007']] * 2
    lq, gt = source.read(1, 2)
    assert np.array_equal(lq, pixels[1][2][..., ::-1] / np.float32(255))
    assert np.array_equal(gt, (pixels[1][2] + 1)[..., ::-1] / np.float32(255))
    assert estrnn_lmdb.infer_frame_size(540 * 960 * 3, 'x') == (540, 960)
    assert estrnn_lmdb.infer_frame_size(720 * 1280 * 3, 'x') == (720, 1280)


def test_gray_frames_in_a_sequence_are_converted(gopro):
    root, seq = gopro
    victim = frames(seq / 'sharp')[0]
    color = cv2.imread(str(victim))
    cv2.imwrite(str(victim), cv2.cvtColor(color, cv2.COLOR_BGR2GRAY))
    _, gt = build(root).read(0, 0)
    assert gt.shape == (64, 96, 3) and np.array_equal(gt[..., 0], gt[..., 1])
