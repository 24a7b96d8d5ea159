"""A video is what it declares, or the run stops naming the file and the frame: a cut download (fewer frames than
the container declares), a size change or timestamps that restart mid-stream are errors, never a silently shorter
or garbled output."""
import av
import numpy as np
import pytest

from memdeblur.utils.errors import DataError
from memdeblur.media.inputs import probe_video
from tests.media.test_video_streams import deblur


def clip(path, frames, size=(32, 48), codec='libx264', options=None):
    """A clip of ``frames`` grey frames of ``size`` (H, W), each a different shade."""
    with av.open(str(path), 'w', options=options or {}) as out:
        stream = out.add_stream(codec, rate=25)
        stream.height, stream.width = size
        stream.pix_fmt = 'yuv420p'
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), index * 4 % 256, np.uint8), format='rgb24')
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def cut_download(tmp_path, kept=30):
    """A 60-frame mp4 with its index first (faststart, as streamed), cut at the packet boundary before packet
    ``kept``: what an interrupted download leaves."""
    whole, cut = tmp_path / 'whole.mp4', tmp_path / 'cut.mp4'
    clip(whole, 60, options={'movflags': 'faststart'})
    with av.open(str(whole)) as container:
        assert container.streams.video[0].frames == 60
        packets = [packet for packet in container.demux(video=0) if packet.size]
        boundary = packets[kept].pos
    cut.write_bytes(whole.read_bytes()[:boundary])
    return cut


def read_all(path):
    return sum(1 for _ in probe_video(str(path)).timed_frames())


def test_a_cut_download_is_refused_with_the_counts(tmp_path):
    cut = cut_download(tmp_path)
    with pytest.raises(DataError, match=r'cut\.mp4 declares 60 frames but only \d+ could be decoded'):
        read_all(cut)
    assert read_all(tmp_path / 'whole.mp4') == 60


def test_the_tool_leaves_no_output_for_a_cut_download(identity_options, tmp_path):  # noqa: F811
    cut = cut_download(tmp_path)
    out = tmp_path / 'out.mp4'
    result = deblur(cut, '-o', out, '--opt', identity_options)
    assert result.returncode == 1 and 'declares 60 frames' in result.stderr and 'Traceback' not in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        'cut.mp4', 'identity.pth', 'identity.yml', 'whole.mp4']


def joined(tmp_path, second_size):
    """Two MPEG-2 program streams joined by concatenation (valid for the format): the second's timestamps start
    over, and its frames may have another size."""
    first, second, both = tmp_path / 'a.mpg', tmp_path / 'b.mpg', tmp_path / 'joined.mpg'
    clip(first, 5, codec='mpeg2video')
    clip(second, 5, size=second_size, codec='mpeg2video')
    both.write_bytes(first.read_bytes() + second.read_bytes())
    return both


def test_a_size_change_mid_stream_names_the_frame(tmp_path):
    with pytest.raises(DataError, match=r'joined\.mpg: frame \d+ \(from 0\) is 64x48, but the video starts at 48x32'):
        read_all(joined(tmp_path, (48, 64)))


def test_timestamps_that_restart_name_the_frame(identity_options, tmp_path):  # noqa: F811
    path = joined(tmp_path, (32, 48))
    with pytest.raises(DataError, match=r'joined\.mpg: frame 5 \(from 0\) has timestamp \d+, not after'):
        read_all(path)
    result = deblur(path, '-o', tmp_path / 'out.mp4', '--opt', identity_options)
    assert result.returncode == 1 and 'frame 5 (from 0)' in result.stderr and not (tmp_path / 'out.mp4').exists()
