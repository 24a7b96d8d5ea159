"""The Restorer from the library: its own checks, frames in and frames out of every type, windows, tiles, exact."""
import threading

import numpy as np
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.errors import DataError
from memdeblur.networks.fast_runner import inference_runner
from memdeblur.runtime.restorer import Restorer
from memdeblur.runtime.backends import open_model
from memdeblur.runtime.windows import restore_stream
from memdeblur.utils.option_check import OptionError
from tests.conftest import TINY_MEMDEBLUR

TINY_ESTRNN = dict(n_features=4, n_blocks=1)


@pytest.fixture(scope='module')
def tiny_memdeblur():
    torch.manual_seed(0)
    return MemDeblurNet(**TINY_MEMDEBLUR).eval()


def saturated_frames(count, height, width, dtype=np.uint8, seed=0):
    """Frames of saturated colour blocks with moving edges (odd sizes allowed), as a video gives them."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    frames = []
    for index in range(count):
        frame = np.zeros((height, width, 3), dtype)
        for _ in range(6):
            y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
            frame[y:y + height // 3, x + index:x + index + width // 3] = rng.choice([0, top], 3)
        frames.append(frame)
    return frames


@pytest.mark.parametrize('settings, words', [
    (dict(tile=8), 'tile 8: tiles of fewer than 32 pixels'),
    (dict(tile=64, exact=True), 'exact restores whole frames; drop tile'),
    (dict(tile=64, tile_overlap=64), 'need 0 <= tile overlap < tile'),
    (dict(window=4, overlap=4), 'need window >= 1 and 0 <= overlap < window'),
    (dict(window=0), 'need window >= 1'),
    (dict(tile='big'), "tile 'big': auto, 0"),
    (dict(precision='float16'), 'float16 is for GPUs'),
    (dict(precision='half'), "precision 'half'"),
    (dict(backend='onnxruntime'), 'runs exported models, not networks: export the network first'),
])
def test_settings_a_restorer_cannot_run_are_refused_when_it_is_made(tiny_memdeblur, settings, words):
    with pytest.raises(OptionError, match=words):
        Restorer(tiny_memdeblur, 'cpu', **settings)


def test_networks_that_restore_window_centres_and_exact_without_whole_sequence_passes_are_refused():
    edvr = ARCH_REGISTRY.get('EDVR')(num_feat=8, num_frame=3, deformable_groups=1, num_extract_block=1,
                                     num_reconstruct_block=1, center_frame_idx=1, with_tsa=False)
    with pytest.raises(OptionError, match='restores the centre of a 3-frame window'):
        Restorer(edvr, 'cpu')
    with pytest.raises(Exception, match='whole'):
        Restorer(ESTRNNNet(**TINY_ESTRNN).eval(), 'cpu', exact=True)


def stream_reference(net, frames, window, overlap, tile=0, tile_overlap=0):
    """What the video tool computed before the Restorer: the PyTorch backend's windows over ``restore_stream``."""
    restore = open_model(net).window_function(tile, tile_overlap)
    tensors = (torch.from_numpy(f).permute(2, 0, 1) for f in frames)
    return [r.permute(1, 2, 0).numpy() for r in restore_stream(restore, tensors, window, overlap)]


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_numpy_frames_in_give_numpy_frames_out_equal_to_the_windowed_stream(tiny_memdeblur, dtype):
    frames = saturated_frames(7, 37, 45, dtype)
    restorer = Restorer(tiny_memdeblur, 'cpu', window=3, overlap=1)
    restored = list(restorer.restore(iter(frames)))
    assert len(restored) == 7 and all(r.dtype == dtype and r.shape == (37, 45, 3) for r in restored)
    for ours, theirs in zip(restored, stream_reference(tiny_memdeblur, frames, 3, 1)):
        assert np.array_equal(ours, theirs)
    tiled = list(Restorer(tiny_memdeblur, 'cpu', window=3, overlap=1, tile=32, tile_overlap=8).restore(frames))
    for ours, theirs in zip(tiled, stream_reference(tiny_memdeblur, frames, 3, 1, 32, 8)):
        assert np.array_equal(ours, theirs)
    assert any(not np.array_equal(a, b) for a, b in zip(tiled, restored))  # the tiles did cut the frames


def test_tensor_frames_of_each_type_come_back_in_their_type(tiny_memdeblur):
    frames = saturated_frames(5, 32, 40)
    restorer = Restorer(tiny_memdeblur, 'cpu', window=5, overlap=0)
    from_numpy = list(restorer.restore(frames))
    as_tensors = [torch.from_numpy(f).permute(2, 0, 1) for f in frames]
    from_tensors = list(restorer.restore(as_tensors))
    assert all(torch.equal(t, torch.from_numpy(n).permute(2, 0, 1)) for t, n in zip(from_tensors, from_numpy))
    floats = list(restorer.restore([t.float() / 255 for t in as_tensors]))
    assert all(f.dtype == torch.float32 and 0 <= f.min() and f.max() <= 1 for f in floats)
    assert max((f * 255 - t.float()).abs().max().item() for f, t in zip(floats, from_tensors)) <= 0.5 + 1e-3


def test_frames_of_another_size_type_or_layout_are_refused_naming_the_frame(tiny_memdeblur):
    restorer = Restorer(tiny_memdeblur, 'cpu', window=3, overlap=0)
    frames = saturated_frames(4, 32, 40)
    with pytest.raises(DataError, match='frame 2 is \\(32, 41\\)'):
        list(restorer.restore(frames[:2] + [np.zeros((32, 41, 3), np.uint8)] + frames[3:]))
    with pytest.raises(DataError, match='frame 1 is .*uint16'):
        list(restorer.restore([frames[0], frames[1].astype(np.uint16)]))
    with pytest.raises(DataError, match='frame 0: numpy frames are \\(H, W, 3\\)'):
        list(restorer.restore([frames[0][..., 0]]))
    with pytest.raises(DataError, match='frame 0: tensors are'):
        list(restorer.restore([torch.zeros(3, 8, 8, dtype=torch.float64)]))
    assert list(restorer.restore([])) == []


def test_exact_equals_the_whole_sequence_and_stops_its_worker_when_the_caller_stops(tiny_memdeblur, tmp_path):
    frames = saturated_frames(6, 33, 47)
    restorer = Restorer(tiny_memdeblur, 'cpu', exact=True, scratch=str(tmp_path))
    restored = list(restorer.restore(frames))
    clip = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames]).float() / 255
    runner, context = inference_runner(tiny_memdeblur, 'cpu')
    with context():
        whole = runner(clip.unsqueeze(0))[0].clamp(0, 1).mul(255).round().to(torch.uint8)
    assert all(np.array_equal(r, w.permute(1, 2, 0).numpy()) for r, w in zip(restored, whole))
    pairs = restorer.restore_pairs(frames)
    original, _ = next(pairs)
    assert np.array_equal(original, frames[0])
    pairs.close()  # the caller stops after one frame: the worker thread ends and the scratch is removed
    assert not any(t.name == 'memdeblur-exact' for t in threading.enumerate())
    assert list(tmp_path.iterdir()) == []


def test_estrnn_restores_every_frame_with_its_margins_reflected():
    torch.manual_seed(0)
    net = ESTRNNNet(**TINY_ESTRNN).eval()
    frames = saturated_frames(6, 32, 32)
    restored = list(Restorer(net, 'cpu', window=4, overlap=1).restore(frames))
    assert len(restored) == 6
    for ours, theirs in zip(restored, stream_reference(net, frames, 4, 1)):
        assert np.array_equal(ours, theirs)


def reused_buffer(frames):
    """What ``cap.read(frame)`` gives: one array, refilled with each frame in turn."""
    buffer = np.empty_like(frames[0])
    for frame in frames:
        buffer[...] = frame
        yield buffer


@pytest.mark.parametrize('settings', [dict(window=3, overlap=1), dict(window=3, overlap=1, tile=32, tile_overlap=8),
                                      dict(exact=True)])
def test_a_source_reusing_one_buffer_restores_as_fresh_frames_and_gets_its_inputs_back(tiny_memdeblur, settings,
                                                                                        tmp_path):
    frames = saturated_frames(7, 37, 45)
    restorer = Restorer(tiny_memdeblur, 'cpu', scratch=str(tmp_path), **settings)
    fresh = list(restorer.restore([f.copy() for f in frames]))
    pairs = list(restorer.restore_pairs(reused_buffer(frames)))
    assert len(pairs) == 7
    for (given, restored), frame, expected in zip(pairs, frames, fresh):
        assert np.array_equal(given, frame)  # the input as it was given, not the buffer's last content
        assert np.array_equal(restored, expected)
    pairs[0][1][...] = 0  # frames given back are the caller's: changing one changes no other
    assert all(np.array_equal(r, e) for (_, r), e in zip(pairs[1:], fresh[1:]))


def test_frames_changed_after_they_were_given_do_not_change_the_result(tiny_memdeblur):
    frames = saturated_frames(5, 32, 40)
    restorer = Restorer(tiny_memdeblur, 'cpu', window=5, overlap=0)
    expected = list(restorer.restore([f.copy() for f in frames]))

    def scribbling():
        for frame in frames:
            copy = frame.copy()
            yield copy
            copy[...] = 255 - copy  # the caller reuses the array once the restorer has it
    assert all(np.array_equal(a, b) for a, b in zip(restorer.restore(scribbling()), expected))


def test_frames_of_any_strides_are_taken(tiny_memdeblur):
    bgr = saturated_frames(5, 33, 47)
    restorer = Restorer(tiny_memdeblur, 'cpu', window=5, overlap=0)
    expected = list(restorer.restore([np.ascontiguousarray(f[..., ::-1]) for f in bgr]))
    flipped = list(restorer.restore([f[..., ::-1] for f in bgr]))  # OpenCV's BGR -> RGB: a negative stride
    assert all(np.array_equal(a, b) for a, b in zip(flipped, expected))
    padded = [np.pad(f, ((2, 2), (3, 3), (0, 0)))[2:-2, 3:-3] for f in bgr]  # a crop of a larger array
    tensors = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1).copy())) for f in padded]
    channels_last = [torch.from_numpy(f.copy()).permute(2, 0, 1) for f in bgr]  # (3, H, W) with strides (1, 3W, 3)
    assert all(np.array_equal(a, b) for a, b in zip(restorer.restore(padded), restorer.restore(bgr)))
    assert all(torch.equal(a, b) for a, b in zip(restorer.restore(tensors), restorer.restore(channels_last)))


@pytest.mark.parametrize('frame, words', [
    (torch.full((3, 16, 16), 255.0), 'frame 0: float32 frames hold values in \\[0, 1\\], got values from 255 to 255'),
    (torch.full((3, 16, 16), float('nan')), 'frame 0: float32 frames hold values in \\[0, 1\\]'),
    (np.zeros((16, 16, 3), np.float32), 'frame 0: numpy frames are \\(H, W, 3\\) uint8 or uint16'),
    (np.zeros((3, 16, 16), np.uint8), 'frame 0: numpy frames are \\(H, W, 3\\)'),
    ([[0, 0, 0]], 'frame 0: tensors are .* got list'),
])
def test_frames_the_restorer_cannot_take_are_one_value_error_naming_the_frame(tiny_memdeblur, frame, words):
    with pytest.raises(ValueError, match=words):
        list(Restorer(tiny_memdeblur, 'cpu', window=2, overlap=0).restore([frame]))


@pytest.mark.parametrize('device, words', [(f'cuda:{torch.cuda.device_count()}', 'usable CUDA GPU'),
                                           ('mps', 'only cpu and cuda'), ('gpu', 'not a device name')])
def test_a_device_this_machine_lacks_is_refused_when_the_restorer_is_made(tiny_memdeblur, device, words):
    with pytest.raises(OptionError, match=words):
        Restorer(tiny_memdeblur, device)
