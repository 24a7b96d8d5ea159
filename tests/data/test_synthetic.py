"""The synthetic GOPRO generator makes real, non-uniform motion blur, reproducibly."""
import cv2
import numpy as np

from memdeblur.data.synthetic import (MotionSettings, SequenceRenderer, SyntheticSettings, blur_from_subframes,
                                      render_sequence, settings_mismatch, write_synthetic_gopro)


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
    assert max(frame_psnrs) < 38, frame_psnrs  # every frame blurred (a sharp frame would be > 45 dB)
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
        assert 'not an empty folder' in str(err)
    else:
        raise AssertionError('an existing set was overwritten')


def test_default_blur_is_as_strong_as_gopros():
    """Frame PSNR of blurry against sharp: mean about 25.6 dB (GOPRO's test set: about 25-26 dB), wide spread."""
    defaults = SyntheticSettings()
    rng = np.random.default_rng(5)
    frame_psnrs = [psnr(frame['blur_gamma'], frame['sharp']) for _ in range(12)
                   for frame in render_sequence(rng, 6, defaults.height, defaults.width, defaults.subframes)]
    assert 24 < np.mean(frame_psnrs) < 27.5, np.mean(frame_psnrs)
    assert min(frame_psnrs) < 23 and max(frame_psnrs) > 28, (min(frame_psnrs), max(frame_psnrs))


def test_camera_and_object_stay_in_view_in_long_sequences():
    """Wandering paths stay near their start: after 100 frames the object is in the frame, the camera on the photo."""
    for seed in range(5):
        renderer = SequenceRenderer(np.random.default_rng(seed), 128, 192, 100 * 11, MotionSettings())
        assert (0 < renderer.object_x).all() and (renderer.object_x < 192).all()
        assert (0 < renderer.object_y).all() and (renderer.object_y < 128).all()
        margin = (min(renderer.background.shape[:2]) - 1.5 * np.hypot(128, 192)) / 2  # canvas left around the view
        assert np.hypot(renderer.camera_x, renderer.camera_y).max() < margin


def test_settings_are_recorded_and_mismatches_named(tmp_path):
    root = tmp_path / 'set'
    write_synthetic_gopro(str(root), {'test': 1}, num_frames=2, height=32, width=48, progress=False)
    expected = SyntheticSettings(splits={'test': 1}, num_frames=2, height=32, width=48)
    assert settings_mismatch(str(root), expected) == ''
    problem = settings_mismatch(str(root), SyntheticSettings(splits={'test': 1}, num_frames=2, height=32, width=64))
    assert problem == 'width 48 instead of 64'
    stronger = SyntheticSettings(splits={'test': 1}, num_frames=2, height=32, width=48,
                                 motion=MotionSettings(camera_speed=5.0))
    assert settings_mismatch(str(root), stronger).startswith('motion ')
    (root / 'settings.json').unlink()
    assert 'older generator' in settings_mismatch(str(root), expected)
