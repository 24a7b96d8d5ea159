"""A video is what it declares, or the run stops naming the file, and the frame or how many frames could be
decoded: a file cut short (in every container: MP4, MOV, Matroska, WebM, AVI, MPEG-TS), a damaged frame, a size
change or timestamps that restart mid-stream are errors, never a silently shorter or garbled output; and whole
files of every container, with B-frames, odd sizes and variable frame rates, are read whole, without a false
alarm."""
import io
import re
from fractions import Fraction

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from memdeblur.utils.errors import DataError
from memdeblur.media.inputs import probe_video
from tests.media.test_video_streams import deblur

# each container the tool reads, with its usual codec
CONTAINERS = {'mp4': 'libx264', 'mov': 'libx264', 'mkv': 'libx264', 'webm': 'libvpx-vp9', 'avi': 'libx264',
              'ts': 'libx264', 'm2ts': 'libx264'}
SATURATED = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255))


def clip(path, frames, size=(32, 48), codec='libx264', options=None, pix_fmt='yuv420p', rate=25, held=0,
         muxer=None):
    """A clip of ``frames`` frames of ``size`` (H, W) at ``rate``, each a saturated colour (``SATURATED`` in turn)
    below and above, noise moving right a pixel a frame (frames of some size, most of the file, and B-frames where
    the codec has them); with ``held`` (ticks of 1/30000 s), the frames
    from the middle on come that much late (a variable frame rate). ``path``: a file name, or a file object written
    as ``muxer``."""
    target = path if hasattr(path, 'write') else str(path)
    noise = np.random.default_rng(0).integers(0, 256, (size[0] // 2, size[1], 3), np.uint8)
    with av.open(target, 'w', format=muxer, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.height, stream.width = size
        stream.pix_fmt = pix_fmt
        if held:
            stream.codec_context.time_base = Fraction(1, 30000)
        for index in range(frames):
            image = np.empty((*size, 3), np.uint8)
            image[...] = SATURATED[index % len(SATURATED)]
            image[:size[0] // 2] = np.roll(noise, index, axis=1)
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            if held:
                frame.pts = round(index * 30000 / rate) + (held if index >= frames // 2 else 0)
                frame.time_base = Fraction(1, 30000)
            else:
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
    with pytest.raises(DataError, match=r"cut\.mp4 is cut short: .* inside its 'mdat' box, .* 30 frame\(s\) "
                       r'\(up to 1\.20 s\) could be decoded; the other 30 of the 60 frames it declares are lost'):
        read_all(cut)
    assert read_all(tmp_path / 'whole.mp4') == 60


def test_the_tool_leaves_no_output_for_a_cut_download(identity_options, tmp_path):  # noqa: F811
    cut = cut_download(tmp_path)
    out = tmp_path / 'out.mp4'
    result = deblur(cut, '-o', out, '--opt', identity_options)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert 'cut.mp4 is cut short' in result.stderr and 'of the 60 frames it declares are lost' in result.stderr
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


def cut_copy(whole, kept):
    """File ``whole`` up to ``kept`` (a fraction) of the bytes that hold its frames (those up to the end of its last
    video packet), and an odd number of them (never a whole number of transport stream packets), beside it as
    ``cut.<extension>``: what an interrupted download or copy leaves."""
    with av.open(str(whole)) as container:
        frames_end = max(packet.pos + packet.size for packet in container.demux(video=0) if packet.size)
    cut = whole.with_name('cut' + whole.suffix)
    cut.write_bytes(whole.read_bytes()[:int(frames_end * kept) | 1])
    return cut


def read_until_refused(path):
    """The frames read from a video before its ``DataError``, and the error's message."""
    decoded = 0
    with pytest.raises(DataError) as refused:
        for _ in probe_video(str(path)).timed_frames():
            decoded += 1
    return decoded, str(refused.value)


@pytest.mark.parametrize('kept', (0.5, 0.97))
@pytest.mark.parametrize('extension', ('mov', 'mkv', 'webm', 'avi', 'ts', 'm2ts'))
def test_a_cut_file_of_every_container_says_what_was_decoded_and_what_is_lost(tmp_path, extension, kept):
    """Cut mid-file and in its last frames; as far as the container says, how much is lost (MOV's frame table
    (written first, as phones and streaming sites do), Matroska's duration, AVI's header)."""
    whole = tmp_path / f'whole.{extension}'
    clip(whole, 24, (45, 67), CONTAINERS[extension], {'movflags': 'faststart'} if extension == 'mov' else None,
         'yuv444p')
    cut = cut_copy(whole, kept)
    decoded, message = read_until_refused(cut)
    assert message.startswith(f'Video {cut} is cut short: the file ends at byte {cut.stat().st_size}, inside ')
    assert f'{decoded} frame(s)' in message and decoded < 24
    lost = {'mov': rf'the other {24 - decoded} of the 24 frames it declares are lost',
            'mkv': r'the rest, about 0\.\d\d s of the 0\.96 s it declares, about \d+ frame\(s\), is lost',
            'avi': r'the rest, up to \d+ of the 24 frames its header lists, is lost',
            'ts': r'the rest is lost \(how much, the file does not say\)'}
    assert re.search(lost.get(extension, lost['mkv' if extension == 'webm' else 'ts']), message), message


def test_an_mp4_cut_before_its_index_is_named_cut_short(tmp_path):
    """An MP4 written as recorded keeps its index (moov) last: cut, FFmpeg cannot open it, and the error says why."""
    whole = tmp_path / 'whole.mp4'
    clip(whole, 24, (45, 67), pix_fmt='yuv444p')
    cut = cut_copy(whole, 0.5)
    with pytest.raises(DataError, match=rf"{re.escape(str(cut))} is cut short: .* inside its 'mdat' box, .*: no frame "
                       'can be read'):
        probe_video(str(cut))


@pytest.mark.parametrize('extension', sorted(CONTAINERS))
def test_whole_files_of_every_container_are_read_whole(tmp_path, extension):
    """No false alarm: B-frames (x264's; an AVI times its packets in decoding order), 30000/1001 fps with a frame
    held half a second (an AVI, which holds a constant rate, keeps it as chunks of dropped frames), an odd size in
    4:4:4, saturated colours; the frames come in the order they are shown, the held one late."""
    path = tmp_path / f'whole.{extension}'
    clip(path, 24, (45, 67), CONTAINERS[extension], pix_fmt='yuv444p', rate=Fraction(30000, 1001), held=15000)
    if CONTAINERS[extension] == 'libx264':
        with av.open(str(path)) as container:
            assert PictureType.B in [frame.pict_type for frame in container.decode(video=0)]
    seq = probe_video(str(path))
    frames, times = zip(*seq.timed_frames())
    assert len(frames) == 24 and frames[0].shape == (45, 67, 3)
    gaps = np.diff([float(pts * seq.facts.time_base) for pts in times])
    # an AVI times frames by the chunks they are stored in, in decoding order: its gap comes a (B-)frame late
    assert gaps.min() > 0 and 0.5 < gaps.max() < 0.6 and np.argmax(gaps) == (12 if extension == 'avi' else 11), gaps
    for index, frame in enumerate(frames):
        assert np.abs(frame[-1, -1].astype(int) - SATURATED[index % len(SATURATED)]).max() < 40, index


@pytest.mark.parametrize('extension', ('mkv', 'avi'))
def test_a_file_cut_after_its_last_frame_is_read_whole(tmp_path, extension):
    """The last bytes hold an index, not frames: every frame the header declares (Matroska's duration, AVI's frame
    count) arrived, and the video is read without an error."""
    whole = tmp_path / f'whole.{extension}'
    clip(whole, 24, (45, 67), pix_fmt='yuv444p')
    cut = whole.with_name(f'cut.{extension}')
    cut.write_bytes(whole.read_bytes()[:-7])
    assert read_all(cut) == 24


class Unseekable(io.RawIOBase):
    """A file written as a stream (a browser's recorder, a pipe): the muxer cannot go back to write sizes."""

    def __init__(self, file):
        super().__init__()
        self.file = file

    def writable(self):
        return True

    def write(self, data):
        return self.file.write(data)


def test_a_webm_written_live_is_read_whole_and_its_cut_copy_refused(tmp_path):
    """WebM recorded live (its Segment of unknown size, no duration): whole, it is read whole; cut, the cut block
    is found without a duration to compare with."""
    whole = tmp_path / 'live.webm'
    with open(whole, 'wb') as file:
        clip(Unseekable(file), 24, (45, 67), 'libvpx-vp9', pix_fmt='yuv444p', muxer='webm')
    assert whole.read_bytes()[0x28:0x2C] == bytes.fromhex('01ffffff')  # the Segment's size: unknown
    assert read_all(whole) == 24
    decoded, message = read_until_refused(cut_copy(whole, 0.6))
    assert 'inside a Matroska cluster of a file written live' in message and f'{decoded} frame(s)' in message
    assert 'the rest is lost (how much, the file does not say)' in message


def test_a_damaged_frame_is_refused_naming_what_decoded_before_it(tmp_path):
    """A whole file whose 13th frame's data is garbled (a bad copy, a failing card): not a cut, but damage."""
    path = tmp_path / 'damaged.mp4'
    clip(path, 24, (45, 67), pix_fmt='yuv444p')
    with av.open(str(path)) as container:
        packet = [packet for packet in container.demux(video=0) if packet.size][12]
        start, end = packet.pos + 8, packet.pos + packet.size
    data = bytearray(path.read_bytes())
    data[start:end] = bytes(byte ^ 0x5A for byte in data[start:end])
    path.write_bytes(bytes(data))
    decoded, message = read_until_refused(path)
    assert re.match(rf'Video {re.escape(str(path))} is damaged: .*; {decoded} frame\(s\) before it could be decoded',
                    message) and 0 < decoded < 24
