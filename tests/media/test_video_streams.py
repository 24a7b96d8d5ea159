"""Real footage in, real video out: tools/deblur_video.py keeps what a video carries besides its pixels.

The clips are made here with PyAV as a phone makes them: H.264, AAC stereo, a 90-degree display rotation,
30000/1001 fps with a frame held half a second (variable frame rate), BT.709 limited range. An identity network
stands in for the deblurring one, so that what comes out can be compared with what went in.
"""
import csv
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from tests.pipeline_helpers import run_tool

BT709, LIMITED, FULL = 1, 1, 2
HOLD = 15000  # ticks of 1/30000 s: the fifth frame comes half a second late


def ramp_image(height=48, width=64):
    """A grey ramp from black to white (16-235 after coding) with a red patch: range and matrix both show."""
    image = np.tile(np.linspace(0, 255, width).round().astype(np.uint8)[None, :, None], (height, 1, 3))
    image[:8, :8] = (200, 40, 40)
    return image


def phone_clip(path, frames=8, colour=(BT709, LIMITED), rotation=90, audio='aac', size=(48, 64), texture=False):
    """A phone-like clip of ``ramp_image`` frames (with ``texture``, random pixels added); returns its frames'
    timestamps."""
    image = ramp_image(*size)
    if texture:
        noise = np.random.default_rng(0).integers(-40, 40, image.shape)
        image = np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)
    timestamps = [i * 1001 + (HOLD if i >= frames // 2 else 0) for i in range(frames)]
    with av.open(str(path), 'w') as out:
        video = out.add_stream('libx264', rate=Fraction(30000, 1001))
        video.height, video.width = image.shape[:2]
        video.pix_fmt = 'yuv420p'
        video.codec_context.time_base = Fraction(1, 30000)
        video.set_display_rotation(rotation)
        context = video.codec_context
        context.colorspace, context.color_range = colour
        context.color_primaries = context.color_trc = BT709
        sound = out.add_stream(audio, rate=48000, layout='stereo')
        for pts in timestamps:
            frame = av.VideoFrame.from_ndarray(image, format='rgb24').reformat(
                format='yuv420p', dst_colorspace=colour[0], dst_color_range=colour[1])
            frame.pts, frame.time_base = pts, Fraction(1, 30000)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = int(48000 * (timestamps[-1] + 1001) / 30000)
        wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.zeros((2, 1024), np.float32)
            chunk[:, :len(wave[start:start + 1024])] = wave[start:start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format='fltp', layout='stereo')
            frame.sample_rate, frame.pts = 48000, start
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    return timestamps


def facts(path):
    """What a player sees of a video: frame times, rotation, colour tags, RGB frames, audio, duration."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        first = frames[0]
        rgb = [f.reformat(format='rgb24', src_colorspace=f.colorspace, src_color_range=f.color_range).to_ndarray()
               for f in frames]
        result = {'times': [round(f.time, 3) for f in frames], 'rotation': first.rotation,
                  'colour': (int(first.colorspace), int(first.color_range)), 'rgb': rgb,
                  'duration': container.duration, 'format': container.format.name}
    with av.open(str(path)) as container:
        audio = container.streams.audio
        result['audio'] = None if not audio else (audio[0].codec_context.name, audio[0].codec_context.layout.name,
                                                  sum(f.samples for f in container.decode(audio=0)))
    return result


def deblur(*args):
    return run_tool('deblur_video.py', *args)


def test_a_phone_clip_keeps_its_audio_rotation_timing_and_colour(identity_options, tmp_path):
    source = tmp_path / 'phone.mp4'
    phone_clip(source)
    out = tmp_path / 'deblurred.mp4'
    result = deblur(source, '-o', out, '--opt', identity_options)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'audio stream #1 (aac): copied without re-encoding' in result.stdout
    before, after = facts(source), facts(out)
    assert after['audio'] == before['audio'] and after['audio'][:2] == ('aac', 'stereo')
    assert after['rotation'] == before['rotation'] == 90  # a player shows it upright, as the input
    assert after['times'] == before['times'] and after['times'][4] - after['times'][3] > 0.5  # the held frame
    assert after['duration'] == before['duration']
    assert after['colour'] == (BT709, LIMITED)
    for decoded, restored in zip(before['rgb'], after['rgb']):
        grey = np.abs(decoded[20:, 8:-8].astype(int) - restored[20:, 8:-8].astype(int))
        assert grey.max() <= 2  # the grey ramp round-trips within 2 code values
    assert np.abs(after['rgb'][0][2:6, 2:6].astype(int) - np.array((200, 40, 40))).max() <= 6  # BT.709, not 601


def test_full_range_input_is_decoded_and_written_as_full_range(identity_options, tmp_path):
    source = tmp_path / 'full.mp4'
    phone_clip(source, colour=(BT709, FULL))
    out = tmp_path / 'deblurred.mp4'
    assert deblur(source, '-o', out, '--opt', identity_options).returncode == 0
    before, after = facts(source), facts(out)
    assert after['colour'] == (BT709, FULL)
    # within 4 code values (swscale's full-range conversions round less evenly); read as limited range, the
    # ramp would be stretched by 255/219, 30 code values at its ends
    assert np.abs(before['rgb'][0][20:, 8:-8].astype(int) - after['rgb'][0][20:, 8:-8].astype(int)).max() <= 4
    assert after['rgb'][0][20:, -1].min() >= 245 and after['rgb'][0][20:, 0].max() <= 8  # black to white kept


@pytest.mark.parametrize('name, container, video, audio, note', [
    ('out.webm', 'matroska,webm', 'vp9', 'opus', 'the webm container does not take aac; re-encoded as libopus'),
    ('out.mkv', 'matroska,webm', 'h264', 'aac', 'copied without re-encoding'),
    ('out.mov', 'mov,mp4,m4a,3gp,3g2,mj2', 'h264', 'aac', 'copied without re-encoding'),
    ('out.avi', 'avi', 'h264', 'aac', 'the avi container holds a constant frame rate'),
])
def test_the_container_is_the_one_the_name_says(identity_options, tmp_path, name, container, video, audio, note):
    source = tmp_path / 'phone.mp4'
    phone_clip(source)
    result = deblur(source, '-o', tmp_path / name, '--opt', identity_options)
    assert result.returncode == 0, result.stderr[-2000:]
    assert note in result.stdout
    with av.open(str(tmp_path / name)) as written:
        assert written.format.name == container
        assert [s.codec_context.name for s in written.streams] == [video, audio]
        assert len(list(written.decode(video=0))) == 8


def test_names_that_cannot_be_written_and_bad_values_are_refused_naming_the_flag(identity_options, tmp_path):
    source = tmp_path / 'phone.mp4'
    phone_clip(source)
    gif = deblur(source, '-o', tmp_path / 'out.gif', '--opt', identity_options)
    assert gif.returncode == 1 and 'cannot write a video named .gif' in gif.stderr
    assert not (tmp_path / 'out.gif').exists()
    for rate in ('1/0', '0', '-30', 'fast'):
        refused = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--fps', rate)
        assert refused.returncode == 2 and 'expected a positive frame rate' in refused.stderr, rate
    tile = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--tile', '8', '--tile-overlap', '2')
    assert tile.returncode == 1 and '--tile 8: tiles of fewer than 32 pixels' in tile.stderr
    crf = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--crf', '99')
    assert crf.returncode == 1 and '--crf 99' in crf.stderr
    letters = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--tile', 'abc')
    assert letters.returncode == 2 and "expected auto or a tile side in pixels" in letters.stderr
    for device, words in (('gpu0', 'not a device name'), ('cuda:7', 'usable CUDA GPU(s)')):
        refused = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--device', device)
        assert refused.returncode == 1 and f'--device {device}: ' in refused.stderr and words in refused.stderr
    assert not list(tmp_path.glob('x.mp4*'))


def test_side_by_side_halves_are_labelled_as_the_player_shows_them(identity_options, tmp_path):
    """A portrait phone clip (coded 48x64, shown rotated 90 degrees): the player shows the two halves upright next to
    each other, each under its label, and the output keeps the rotation tag."""
    source = tmp_path / 'phone.mp4'
    phone_clip(source)
    out = tmp_path / 'side.mp4'
    assert deblur(source, '-o', out, '--opt', identity_options, '--side-by-side').returncode == 0
    written = facts(out)
    assert written['rotation'] == 90
    shown = np.rot90(written['rgb'][0], 1)  # as a player shows it: 90 degrees counter-clockwise
    assert shown.shape[1] == 2 * 48 and shown.shape[0] > 64  # halves side by side, a banner above each
    banner = shown[:shown.shape[0] - 64]
    assert banner.max() > 200 and np.median(banner) < 30  # white text on black
    upright = np.rot90(ramp_image(), 1)
    assert np.abs(shown[-64:, :48].astype(int) - upright).mean() < 6  # the input half, upright


def test_a_report_for_footage_without_ground_truth(identity_options, tmp_path):
    """--report: per-frame edge sharpness and NIQE of input and output at each frame's time, CSV and plot."""
    source = tmp_path / 'phone.mp4'
    timestamps = phone_clip(source, frames=6, size=(192, 208), texture=True)
    result = deblur(source, '-o', tmp_path / 'out.mp4', '--opt', identity_options, '--report')
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / 'out_report.csv') as f:
        rows = list(csv.DictReader(f))
    assert [float(r['time_s']) for r in rows] == pytest.approx([t / 30000 for t in timestamps])
    for row in rows:  # the identity network: the output scores as the input
        assert float(row['sharpness_input']) > 0 and float(row['niqe_input']) > 0
        assert float(row['sharpness_output']) == pytest.approx(float(row['sharpness_input']))
        assert float(row['niqe_output']) == pytest.approx(float(row['niqe_input']))
    plot = cv2.imread(str(tmp_path / 'out_report.png'))
    assert plot is not None and plot.shape[0] > 300 and plot.shape[1] > 600
    assert 'edge sharpness ' in result.stdout and 'NIQE ' in result.stdout and 'out_report.png' in result.stdout
    again = deblur(source, '-o', tmp_path / 'again.mp4', '--opt', identity_options, '--report')
    assert again.returncode == 0
    existing = deblur(source, '-o', tmp_path / 'out2.mp4', '--opt', identity_options, '--report')
    (tmp_path / 'out3_report.csv').write_text('mine')
    clash = deblur(source, '-o', tmp_path / 'out3.mp4', '--opt', identity_options, '--report')
    assert existing.returncode == 0 and clash.returncode == 1 and 'out3_report.csv' in clash.stderr
    assert (tmp_path / 'out3_report.csv').read_text() == 'mine' and not (tmp_path / 'out3.mp4').exists()


def test_a_folder_mixing_layouts_and_16_bit_frames_is_read_whole(identity_options, tmp_path):
    """A plain frame folder beside a GOPRO-layout sequence (seqB/blur_gamma/): both are deblurred; 16-bit frames
    come out as 16-bit PNGs (here, through the identity network, bit for bit); a sequence folder without frames
    is named, not silently left out."""
    clips = tmp_path / 'clips'
    rng = np.random.default_rng(0)
    for folder, dtype in ((clips / 'seqA', np.uint8), (clips / 'seqB' / 'blur_gamma', np.uint16)):
        folder.mkdir(parents=True)
        for index in range(3):
            high = 256 if dtype == np.uint8 else 65536
            cv2.imwrite(str(folder / f'{index:03d}.png'), rng.integers(0, high, (32, 40, 3)).astype(dtype))
    (clips / 'seqB' / 'sharp').mkdir()
    result = deblur(clips, '-o', tmp_path / 'out', '--opt', identity_options)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['seqA', 'seqB']
    for name in ('000', '001', '002'):
        deep = cv2.imread(str(tmp_path / 'out' / 'seqB' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert deep.dtype == np.uint16
        assert np.array_equal(deep, cv2.imread(str(clips / 'seqB' / 'blur_gamma' / f'{name}.png'),
                                               cv2.IMREAD_UNCHANGED))
    (clips / 'notes').mkdir()
    refused = deblur(clips, '-o', tmp_path / 'out2', '--opt', identity_options)
    assert refused.returncode == 1 and 'notes hold(s) neither frames nor a blur_gamma' in refused.stderr


def ten_bit_clip(path):
    """A 10-bit H.264 clip of a fine grey ramp (more levels than 8 bits hold); returns its decoded 16-bit frame."""
    ramp = np.tile(np.linspace(4096, 60000, 64).astype(np.uint16)[None, :, None], (48, 1, 3))
    with av.open(str(path), 'w') as out:
        video = out.add_stream('libx264', rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, 'yuv420p10le'
        video.options = {'crf': '0'}
        for _ in range(3):
            for packet in video.encode(av.VideoFrame.from_ndarray(ramp, format='rgb48le')):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return first_frame(path, 'rgb48le')


def first_frame(path, rgb):
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.format.name, frame.reformat(format=rgb).to_ndarray().astype(np.int64)


def test_ten_bit_input_is_restored_from_its_ten_bits_and_written_as_asked(identity_options, tmp_path):
    source = tmp_path / 'ten.mp4'
    _, decoded = ten_bit_clip(source)
    eight = deblur(source, '-o', tmp_path / 'eight.mp4', '--opt', identity_options)
    assert eight.returncode == 0 and '10-bit frames written as 8-bit (yuv420p); --pix-fmt yuv420p10le' in eight.stdout
    ten = deblur(source, '-o', tmp_path / 'ten_out.mp4', '--opt', identity_options, '--pix-fmt', 'yuv420p10le',
                 '--crf', '0')
    assert ten.returncode == 0, ten.stderr[-2000:]
    eight_format, eight_frame = first_frame(tmp_path / 'eight.mp4', 'rgb48le')
    ten_format, ten_frame = first_frame(tmp_path / 'ten_out.mp4', 'rgb48le')
    assert (eight_format, ten_format) == ('yuv420p', 'yuv420p10le')
    # in 10-bit steps (64 of 16 bits): the 10-bit output keeps the ramp's levels, 8 bits cannot
    assert np.abs(ten_frame - decoded).max() <= 2 * 64 < np.abs(eight_frame - decoded).max()
    bad = deblur(source, '-o', tmp_path / 'x.mp4', '--opt', identity_options, '--pix-fmt', 'yuv420p99')
    assert bad.returncode == 2 and 'not a pixel format FFmpeg knows' in bad.stderr


def test_subtitles_are_copied_where_the_container_takes_them_and_named_where_not(identity_options, tmp_path):
    source = tmp_path / 'subtitled.mkv'
    with av.open(str(source), 'w') as out:
        video = out.add_stream('libx264', rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, 'yuv420p'
        subtitles = out.add_mux_stream('subrip')
        subtitles.time_base = Fraction(1, 1000)
        for _ in range(3):
            for packet in video.encode(av.VideoFrame.from_ndarray(ramp_image(), format='rgb24')):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        line = av.Packet(b'Hello')
        line.stream, line.pts, line.dts, line.duration, line.time_base = subtitles, 0, 0, 50, Fraction(1, 1000)
        out.mux(line)
    kept = deblur(source, '-o', tmp_path / 'kept.mkv', '--opt', identity_options)
    assert kept.returncode == 0 and 'subtitle stream #1 (srt): copied without re-encoding' in kept.stdout
    with av.open(str(tmp_path / 'kept.mkv')) as written:
        assert [bytes(p) for p in written.demux(written.streams.subtitles[0]) if p.size] == [b'Hello']
    dropped = deblur(source, '-o', tmp_path / 'dropped.mp4', '--opt', identity_options)
    assert dropped.returncode == 0 and 'the mp4 container does not take it; left out' in dropped.stdout
