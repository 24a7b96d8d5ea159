"""The synthetic GOPRO generator makes real, non-uniform motion blur, reproducibly."""
import cv2
import numpy as np

from memdeblur.data.synthetic import blur_from_subframes, write_synthetic_gopro


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64))**2))


def test_layout_and_matching_frame_names(synthetic_gopro):
    for split, count in (('train', 2), ('test', 1)):
        sequences = sorted((synthetic_gopro / split).iterdir())
        assert len(sequences) == count
        for seq in sequences:
            names = [sorted(p.name for p in (seq / kind).iterdir()) for kind in ('blur', 'blur_gamma', 'sharp')]
            assert names[0] == names[1] == names[2] and len(names[0]) == 8


def test_blur_is_strong_and_varies_across_the_frame(synthetic_gopro):
    frame_psnrs, spreads = [], []
    for seq in sorted((synthetic_gopro / 'train').iterdir()):
        for blur_path in sorted((seq / 'blur_gamma').iterdir()):
            blur, sharp = cv2.imread(str(blur_path)), cv2.imread(str(seq / 'sharp' / blur_path.name))
            frame_psnrs.append(psnr(blur, sharp))
            tiles = [psnr(blur[y:y + 16, x:x + 24], sharp[y:y + 16, x:x + 24]) for y in range(0, 64, 16)
                     for x in range(0, 96, 24)]
            spreads.append(max(tiles) - min(tiles))
    assert max(frame_psnrs) < 36, frame_psnrs  # "well below 40 dB" in every frame
    assert np.median(spreads) > 3, spreads  # dB between the sharpest and blurriest 16x24 tile


def test_gamma_blur_averages_in_linear_light():
    dark, bright = np.zeros((1, 1, 3)), np.ones((1, 1, 3))
    plain, gamma = blur_from_subframes([dark, bright])
    assert np.allclose(plain, 0.5) and np.allclose(gamma, 0.5**(1 / 2.2))


def test_seeded_and_never_overwrites(tmp_path):
    a, b, c = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    for root, seed in ((a, 3), (b, 3), (c, 4)):
        write_synthetic_gopro(str(root), {'test': 1}, num_frames=2, height=32, width=48, seed=seed, progress=False)
    files = lambda root: sorted(p for p in root.rglob('*.png'))  # noqa: E731
    assert [p.read_bytes() for p in files(a)] == [p.read_bytes() for p in files(b)]
    assert [p.read_bytes() for p in files(a)] != [p.read_bytes() for p in files(c)]
    try:
        write_synthetic_gopro(str(a), {'test': 1}, num_frames=2, height=32, width=48, progress=False)
    except FileExistsError as err:
        assert 'not empty' in str(err)
    else:
        raise AssertionError('an existing set was overwritten')
