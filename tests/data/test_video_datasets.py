"""Every layout reads the same frames; training clips and test sequences are what the options ask for."""
import itertools
import random
import shutil

import pytest
import torch
from basicsr.data import build_dataloader, build_dataset

from memdeblur.data.prepare import write_basicsr_lmdb, write_estrnn_lmdb
from memdeblur.data.video_deblur_test_dataset import split_into_windows
from tools import prepare_gopro


@pytest.fixture(scope='module')
def layouts(synthetic_gopro, tmp_path_factory):
    """The synthetic test split in every layout: options for each, all holding the same frames."""
    root = tmp_path_factory.mktemp('layouts')
    split = synthetic_gopro / 'test'
    write_basicsr_lmdb(str(split), str(root / 'lmdb'), blur_dirs=('blur_gamma', ))
    write_estrnn_lmdb(str(split), str(root / 'estrnn'), 'gopro_syn', 'test')
    for seq in split.iterdir():
        shutil.copytree(seq / 'blur_gamma', root / 'bsd' / seq.name / 'Blur' / 'RGB')
        shutil.copytree(seq / 'sharp', root / 'bsd' / seq.name / 'Sharp' / 'RGB')
        shutil.copytree(seq / 'blur_gamma', root / 'dvd' / seq.name / 'input')
        shutil.copytree(seq / 'sharp', root / 'dvd' / seq.name / 'GT')
    return {
        'gopro': {'dataroot': str(split), 'layout': 'gopro', 'blur_dir': 'blur_gamma'},
        'bsd': {'dataroot': str(root / 'bsd'), 'layout': 'bsd'},
        'dvd': {'dataroot': str(root / 'dvd'), 'layout': 'dvd'},
        'lmdb': {'dataroot': str(root / 'lmdb'), 'layout': 'lmdb', 'blur_dir': 'blur_gamma'},
        'estrnn_lmdb': {'dataroot': str(root / 'estrnn'), 'layout': 'estrnn_lmdb', 'lmdb_name': 'gopro_syn',
                        'split': 'test'},
    }


def make_test_dataset(opt, **extra):
    return build_dataset({'type': 'VideoDeblurTestDataset', 'name': 'test', 'phase': 'val', **opt, **extra})


def test_every_backend_reads_identical_tensors(layouts):
    reference = make_test_dataset(layouts['gopro'])[0]
    assert reference['lq'].shape == (8, 3, 64, 96) and reference['lq'].dtype == torch.float32
    assert not torch.equal(reference['lq'], reference['gt'])
    for layout, opt in layouts.items():
        item = make_test_dataset(opt)[0]
        assert torch.equal(item['lq'], reference['lq']), layout
        assert torch.equal(item['gt'], reference['gt']), layout
        assert item['folder'] == reference['folder'] and item['frame_names'] == reference['frame_names'], layout


def test_test_windows_keep_every_frame_once(layouts):
    dataset = make_test_dataset(layouts['gopro'], num_frame=3, overlap=1)
    kept = []
    for item in dataset:
        kept += [item['frame_start'] + i for i in range(*item['keep'])]
        assert item['lq'].shape[0] == 3
    assert kept == list(range(8))
    for total, window, overlap in ((10, 4, 2), (10, 4, 0), (7, 7, 0), (5, 8, 3), (100, 30, 10)):
        kept = [s + i for s, _, a, b in split_into_windows(total, window, overlap) for i in range(a, b)]
        assert kept == list(range(total))


def train_options(opt, **extra):
    return {'type': 'VideoDeblurDataset', 'name': 'train', 'phase': 'train', 'num_frame': 4, 'gt_size': 32,
            'use_hflip': True, 'use_rot': True, **opt, **extra}


def test_training_clips_one_per_start_frame_with_aligned_crops(synthetic_gopro):
    opt = train_options({'dataroot': str(synthetic_gopro / 'train'), 'layout': 'gopro', 'blur_dir': 'blur_gamma'},
                        use_hflip=False, use_rot=False)
    dataset = build_dataset(opt)
    assert len(dataset) == 2 * (8 - 4 + 1)
    item = dataset[6]
    assert item['lq'].shape == item['gt'].shape == (4, 3, 32, 32)
    full = make_test_dataset({k: opt[k] for k in ('dataroot', 'layout', 'blur_dir')})[1]  # the same sequence, whole
    assert item['key'] == f"{full['folder']}/{full['frame_names'][1]}"
    # find the crop in the full sharp frame, then the blurry crop must sit at the same place
    gt_frames, lq_frames = full['gt'][1:5], full['lq'][1:5]
    matches = [(y, x) for y in range(64 - 31) for x in range(96 - 31)
               if torch.equal(gt_frames[:, :, y:y + 32, x:x + 32], item['gt'])]
    assert len(matches) == 1
    y, x = matches[0]
    assert torch.equal(lq_frames[:, :, y:y + 32, x:x + 32], item['lq'])


def locate_transformed_crop(crop, full):
    """(transpose, flip_h, flip_w, y, x) such that undoing the transform puts ``crop`` at (y, x) of ``full``."""
    size = crop.shape[-1]
    windows = full[:, 0].unfold(1, size, 1).unfold(2, size, 1)  # (T, Y, X, size, size)
    found = []
    for transpose, flip_h, flip_w in itertools.product((False, True), repeat=3):
        undone = crop[:, 0]
        if flip_w:
            undone = undone.flip(-1)
        if flip_h:
            undone = undone.flip(-2)
        if transpose:
            undone = undone.transpose(-1, -2)
        hits = (windows == undone[:, None, None]).flatten(3).all(-1).all(0).nonzero().tolist()
        found += [(transpose, flip_h, flip_w, y, x) for y, x in hits]
    return found


def test_augmentation_flips_and_rotates_clip_and_target_together(synthetic_gopro):
    opt = train_options({'dataroot': str(synthetic_gopro / 'train'), 'layout': 'gopro'}, gt_size=48,
                        random_reverse=True)
    dataset = build_dataset(opt)
    whole = make_test_dataset({'dataroot': opt['dataroot'], 'layout': 'gopro'})[0]
    random.seed(0)
    transforms, reversed_seen = set(), set()
    for _ in range(24):
        item = dataset[0]
        for reverse in (False, True):
            gt_clip, lq_clip = whole['gt'][:4], whole['lq'][:4]
            if reverse:
                gt_clip, lq_clip = gt_clip.flip(0), lq_clip.flip(0)
            found = locate_transformed_crop(item['gt'], gt_clip)
            if found:
                break
        assert len(found) == 1
        transpose, flip_h, flip_w, y, x = found[0]
        lq = lq_clip[:, :, y:y + 48, x:x + 48]
        if transpose:
            lq = lq.transpose(-1, -2)
        if flip_h:
            lq = lq.flip(-2)
        if flip_w:
            lq = lq.flip(-1)
        assert torch.equal(lq, item['lq'])
        transforms.add(found[0][:3])
        reversed_seen.add(reverse)
    assert len(transforms) >= 6 and reversed_seen == {False, True}


def test_rotations_need_square_crops(synthetic_gopro):
    opt = train_options({'dataroot': str(synthetic_gopro / 'train'), 'layout': 'gopro'}, gt_size=None)
    with pytest.raises(ValueError, match='use_rot needs square clips'):
        build_dataset(opt)
    assert build_dataset({**opt, 'use_rot': False})[0]['lq'].shape == (4, 3, 64, 96)


def test_tools_build_both_lmdbs_and_training_loads_from_them(synthetic_gopro, tmp_path):
    prepare_gopro.main([str(synthetic_gopro), str(tmp_path / 'lmdb'), '--format', 'lmdb', '--splits', 'train'])
    prepare_gopro.main([str(synthetic_gopro), str(tmp_path / 'estrnn'), '--format', 'estrnn_lmdb', '--splits', 'train',
                        '--name', 'gopro_syn'])
    sources = [{'dataroot': str(tmp_path / 'lmdb' / 'train'), 'layout': 'lmdb', 'blur_dir': 'blur_gamma'},
               {'dataroot': str(tmp_path / 'estrnn'), 'layout': 'estrnn_lmdb', 'lmdb_name': 'gopro_syn',
                'split': 'train'}]
    for source in sources:
        dataset = build_dataset(train_options(source))
        loader = build_dataloader(dataset, {'phase': 'train', 'num_worker_per_gpu': 2, 'batch_size_per_gpu': 3,
                                            'use_shuffle': True}, num_gpu=0, dist=False, seed=0)
        batches = [batch for _, batch in zip(range(2), loader)]
        assert [tuple(b['lq'].shape) for b in batches] == [(3, 4, 3, 32, 32)] * 2
        assert all(0 <= b['gt'].min() and b['gt'].max() <= 1 for b in batches)


def test_prepare_tool_downsamples(synthetic_gopro, tmp_path):
    """--size is HEIGHTxWIDTH as in every tool."""
    prepare_gopro.main([str(synthetic_gopro), str(tmp_path / 'ds'), '--format', 'folder', '--size', '32x48',
                        '--splits', 'test'])
    item = make_test_dataset({'dataroot': str(tmp_path / 'ds' / 'test'), 'layout': 'gopro',
                              'blur_dir': 'blur_gamma'})[0]
    assert item['lq'].shape == (8, 3, 32, 48)
    with pytest.raises(FileExistsError, match='exists; pass --force'):
        prepare_gopro.main([str(synthetic_gopro), str(tmp_path / 'ds'), '--format', 'folder', '--size', '32x48',
                            '--splits', 'test'])
