"""Restoring clips and streams: windows in time, tiles in space, the fast path, whole windows exactly."""
import pytest
import torch

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.runtime.exact import whole_window_restorer
from memdeblur.runtime.backends import open_model
from memdeblur.runtime.frames import to_float_frames, to_integer_frames
from memdeblur.runtime.windows import clip_window_restorer, restore_stream, restore_tiled
from memdeblur.networks.checkpoint import load_pretrained
from memdeblur.networks.rewrites import fold_batch_norms
from tests.conftest import TINY_MEMDEBLUR


@pytest.mark.parametrize('full_windows', [False, True])
@pytest.mark.parametrize('length, window, overlap', [(1, 4, 2), (4, 4, 2), (5, 4, 2), (6, 4, 2), (23, 7, 3),
                                                      (20, 5, 0), (9, 3, 2)])
def test_windows_output_every_frame_once_in_order_from_the_window_with_more_context(length, window, overlap,
                                                                                       full_windows):
    """Each frame once, in order, from the window where it has more context; with ``full_windows`` (exported
    models) every window of a stream at least one window long has ``window`` frames."""
    frames = [torch.full((1, 2, 2), float(i)) for i in range(length)]
    calls = []

    def restore(clip):  # tags each output with the window it came from
        calls.append(clip[:, 0, 0, 0].tolist())
        return clip + 1000 * len(calls)

    outputs = [o[0, 0, 0].item() for o in restore_stream(restore, iter(frames), window, overlap, full_windows)]
    assert [o % 1000 for o in outputs] == list(range(length))
    assert all(len(c) <= window for c in calls)
    if full_windows:
        assert all(len(c) == min(window, length) for c in calls)
        assert all(c == list(range(int(c[0]), int(c[0]) + len(c))) for c in calls)  # consecutive frames
    for value in outputs:  # a frame shared by two windows comes from the one where it is further from the edge
        frame, window_index = int(value % 1000), int(value // 1000) - 1
        clip = calls[window_index]
        position = clip.index(frame)
        others = [c for c in calls if frame in c and c is not clip]
        for other in others:
            other_position = other.index(frame)
            own = min(position, len(clip) - 1 - position) if frame not in (0, length - 1) else 0
            alternative = min(other_position, len(other) - 1 - other_position)
            assert own >= alternative - 1  # at most one frame less context (odd overlaps split unevenly)


def test_tiles_cover_every_pixel_and_average_their_overlaps():
    clip = torch.rand(2, 3, 50, 70)
    assert torch.allclose(restore_tiled(lambda x: x, clip, 24, 8), clip)
    assert torch.equal(restore_tiled(lambda x: x * 2, clip, 0, 0), clip * 2)
    shapes = []
    restore_tiled(lambda x: shapes.append(tuple(x.shape[-2:])) or x, clip, 24, 8)
    assert set(shapes) == {(24, 24)} and len(shapes) == 3 * 4
    with pytest.raises(ValueError, match='tile overlap must be'):
        restore_tiled(lambda x: x, clip, 24, 24)


def test_whole_window_restorer_equals_the_whole_clip_result(memdeblur_official_checkpoint):
    """The tool's MemDeblur windows (features recomputed, outputs kept as uint8) equal ``net(window)``, bit for bit."""
    net = load_pretrained(MemDeblurNet(), memdeblur_official_checkpoint)
    torch.manual_seed(0)
    window = torch.randint(0, 256, (5, 3, 64, 96), dtype=torch.uint8)
    for precision, fast in (('float32', False), ('float32', True), ('bfloat16', True)):
        model = open_model(net, precision=precision, fast=fast)
        whole = to_integer_frames(model.restore_clip(to_float_frames(window)))
        assert torch.equal(whole_window_restorer(model.network, model.context, 'cpu')(window), whole), (precision, fast)


def test_window_restorer_takes_and_gives_uint8_on_every_path():
    """The PyTorch backend's windows: MemDeblur whole frames (restore_frames), tiles and networks without
    restore_frames (``restore_clip`` on float32), ESTRNN with its margins; uint8 in, uint8 out, the same size; both
    MemDeblur paths agree, and a tile covering the whole frame restores whole frames."""
    torch.manual_seed(0)
    window = torch.randint(0, 256, (6, 3, 40, 56), dtype=torch.uint8)
    model = open_model(MemDeblurNet(**TINY_MEMDEBLUR))
    whole = model.window_function(tile=0, tile_overlap=0)(window)
    through_clips = clip_window_restorer(model.restore_clip, (0, 0), tile=0, tile_overlap=0)(window)
    tiled = model.window_function(tile=32, tile_overlap=8)(window)
    by_estrnn = open_model(ESTRNNNet(n_features=8, n_blocks=2)).window_function(tile=0, tile_overlap=0)(window)
    for restored in (whole, through_clips, tiled, by_estrnn):
        assert restored.dtype == torch.uint8 and restored.shape == window.shape
    assert torch.equal(whole, through_clips)
    assert not torch.equal(tiled, whole)  # tiles see less context
    model.network.forward = lambda clip: pytest.fail('a tile covering the frame took the float32 clip path')
    assert torch.equal(model.window_function(tile=64, tile_overlap=8)(window), whole)


def test_fast_inference_matches_the_plain_network(memdeblur_official_checkpoint):
    net = load_pretrained(MemDeblurNet(), memdeblur_official_checkpoint).eval()
    clip = torch.rand(4, 3, 64, 96)
    plain = open_model(net, fast=False).restore_clip(clip)
    fast = open_model(net).restore_clip(clip)
    assert (fast - plain).abs().max() < 1e-4
    assert fold_batch_norms(MemDeblurNet(**TINY_MEMDEBLUR).eval()) == 3 * 11  # three ResNet stems
    torch.manual_seed(0)
    estrnn = ESTRNNNet(n_features=8, n_blocks=2).eval()
    long_clip = torch.rand(6, 3, 32, 32)
    assert (open_model(estrnn).restore_clip(long_clip) - open_model(estrnn, fast=False).restore_clip(long_clip)).abs(
    ).max() < 1e-4
    bf16 = open_model(net, precision='bfloat16').restore_clip(clip)
    assert torch.isfinite(bf16).all() and (bf16 - plain).abs().mean() < 0.05
    with pytest.raises(ValueError, match='float16 is for GPUs'):
        open_model(net, precision='float16')
