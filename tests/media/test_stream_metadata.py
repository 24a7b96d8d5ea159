"""A restored video keeps what describes its other streams: the language and title of its audio, and its
attachments (a subtitle font in Matroska) are copied, or named in the notes as left out where the container
cannot hold them."""
import av
import numpy as np
import pytest

from tests.media.test_video_streams import deblur

FONT = b'\x00\x01\x00\x00' + bytes(range(256)) * 4  # the bytes of a (stand-in) TrueType font


def film(path):
    """A Matroska clip: video, French commentary audio (language, title; not the default track), a font."""
    with av.open(str(path), 'w') as out:
        video = out.add_stream('libx264', rate=25)
        video.height, video.width, video.pix_fmt = 32, 48, 'yuv420p'
        sound = out.add_stream('aac', rate=48000, layout='stereo')
        sound.metadata.update({'language': 'fra', 'title': 'Commentaire'})
        out.add_attachment('subtitles.ttf', 'font/ttf', FONT)
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 50 * index, np.uint8), format='rgb24')
            frame.pts = index
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        for start in range(0, 9600, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format='fltp', layout='stereo')
            frame.sample_rate, frame.pts = 48000, start
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)


@pytest.mark.parametrize('name, audio_note, attachment_note', [
    ('out.mkv', 'copied without re-encoding', 'attachment #2 (subtitles.ttf): copied'),
    ('out.mp4', 'copied without re-encoding',
     'attachment #2 (subtitles.ttf): the mp4 container cannot hold attachments; left out'),
    ('out.webm', 're-encoded as libopus',
     'attachment #2 (subtitles.ttf): the webm container cannot hold attachments; left out'),
])
def test_audio_tags_and_attachments_are_kept_or_named(identity_options, tmp_path, name, audio_note,  # noqa: F811
                                                      attachment_note):
    source = tmp_path / 'film.mkv'
    film(source)
    out = tmp_path / name
    result = deblur(source, '-o', out, '--opt', identity_options)
    assert result.returncode == 0, result.stderr[-2000:]
    assert audio_note in result.stdout and attachment_note in result.stdout
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.metadata.get('language') == 'fra'
        if name != 'out.mp4':  # mp4 has no track title
            assert audio.metadata.get('title') == 'Commentaire'
        attachments = [s for s in container.streams if s.type == 'attachment']
        if name == 'out.mkv':
            assert [(a.metadata.get('filename'), a.mimetype, a.data) for a in attachments] == [
                ('subtitles.ttf', 'font/ttf', FONT)]
        else:
            assert attachments == []
