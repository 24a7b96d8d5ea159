"""tools/deblur_video.py end to end: videos and frame folders in and out, errors, memory, --exact."""
import json
import os
import re

import av
import cv2
import numpy as np
import pytest
import torch
import yaml

from memdeblur.archs.estrnn_arch import ESTRNNNet
from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.utils.errors import DataError
from memdeblur.runtime.exact import check_exact_supported
from tests.conftest import TINY_MEMDEBLUR
from tests.media.test_images import exif_jpeg, pattern
from tests.media.test_video_files import clip, cut_copy
from tests.pipeline_helpers import run_tool


def write_video(path, frames, fps=24):
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = 'yuv444p'
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def video_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
        return len(frames), frames[0].shape[:2], stream.average_rate


@pytest.fixture
def tool_options(tmp_path):
    """Test options of a tiny MemDeblur with freshly initialised weights."""
    torch.manual_seed(0)
    weights = tmp_path / 'tiny.pth'
    torch.save({'params': MemDeblurNet(**TINY_MEMDEBLUR).state_dict()}, weights)
    opt = {'name': 'tiny', 'model_type': 'MemDeblurModel', 'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
           'path': {'pretrain_network_g': str(weights)}}
    path = tmp_path / 'tiny.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def deblur(*args, fresh=True):
    """``tools/deblur_video.py`` with ``args``; ``fresh=False`` runs it in this interpreter (error paths)."""
    return run_tool('deblur_video.py', *args, fresh=fresh)


def test_tool_deblurs_a_video_and_a_frame_folder(tool_options, synthetic_gopro, tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (45, 61, 3), np.uint8) for _ in range(9)]  # odd size
    video = tmp_path / 'clip.mp4'
    write_video(video, frames, fps=25)
    out = tmp_path / 'deblurred.mp4'
    summary = tmp_path / 'summary.json'
    result = deblur(video, '-o', out, '--opt', tool_options, '--window', 4, '--overlap', 2, '--summary', summary)
    assert result.returncode == 0, result.stderr[-2000:]
    assert video_facts(out) == (9, (45, 61), 25)
    assert 'frame/s' in result.stderr  # the progress bar
    assert ': 9 frames -> ' in result.stdout
    (reported, ) = json.loads(summary.read_text())['sequences']
    assert reported['sequence'] == 'clip' and reported['frames'] == 9 and reported['output'] == str(out)
    assert reported['seconds'] > 0 and reported['peak_memory_mib'] > 0
    again = deblur(video, '-o', out, '--opt', tool_options)
    assert again.returncode != 0 and 'exists; pass --force' in again.stderr
    side = tmp_path / 'side.mp4'
    assert deblur(video, '-o', side, '--opt', tool_options, '--side-by-side').returncode == 0
    height, width = video_facts(side)[1]
    assert width == 122 and height > 45  # input | deblurred, a label above each half

    folder = synthetic_gopro / 'test' / 'SYN001_test_00' / 'blur_gamma'
    pngs = tmp_path / 'frames_out'
    result = deblur(folder, '-o', pngs, '--opt', tool_options, '--window', 5, '--overlap', 2)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in pngs.glob('*.png')) == sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in pngs.iterdir() if p.suffix != '.png') == [  # ownership, what made it
        '.memdeblur-output.json', '.memdeblur-run.json']
    assert cv2.imread(str(next(pngs.glob('*.png')))).shape == (64, 96, 3)


def test_tool_errors_name_the_problem_and_touch_nothing(tool_options, tmp_path):
    missing = deblur(tmp_path / 'nowhere.mp4', '-o', tmp_path / 'x.mp4', '--opt', tool_options, fresh=False)
    assert missing.returncode != 0 and 'nowhere.mp4 does not exist' in missing.stderr
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + os.urandom(2000))
    existing = tmp_path / 'keep.mp4'
    existing.write_bytes(b'precious')
    result = deblur(corrupt, '-o', existing, '--opt', tool_options, '--force', fresh=False)
    assert result.returncode != 0 and 'corrupt.mp4' in result.stderr
    assert existing.read_bytes() == b'precious' and not list(tmp_path.glob('.partial*'))
    empty = tmp_path / 'empty_frames'
    (empty / 'SEQ').mkdir(parents=True)
    result = deblur(empty, '-o', tmp_path / 'empty_out', '--opt', tool_options, fresh=False)
    assert result.returncode != 0 and 'holds no frames' in result.stderr and not (tmp_path / 'empty_out').exists()
    one = tmp_path / 'one.mp4'
    write_video(one, [np.full((32, 32, 3), 128, np.uint8)])
    result = deblur(one, '-o', tmp_path / 'frames.mp4', '--opt', tool_options, '--format', 'png', fresh=False)
    assert result.returncode != 0 and 'named like a video file' in result.stderr
    assert not (tmp_path / 'frames.mp4').exists()
    result = deblur(one, '-o', tmp_path / 'one_out', '--opt', tool_options, fresh=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((tmp_path / 'one_out').glob('*.png'))) == 1


def test_a_cut_mkv_stops_the_run_naming_what_was_decoded_and_leaves_no_output(identity_options, tmp_path):
    """A Matroska file cut mid-frame (it declares no frame count) is refused mid-run as the cut MP4 is: the error
    names the file, the frames decoded and what is lost, and nothing is left in place of the output."""
    whole = tmp_path / 'whole.mkv'
    clip(whole, 24, (45, 67), pix_fmt='yuv444p')
    cut = cut_copy(whole, 0.6)
    out = tmp_path / 'out.mp4'
    result = deblur(cut, '-o', out, '--opt', identity_options, '--window', 4, '--overlap', 1, fresh=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert f'error: Video {cut} is cut short' in result.stderr
    assert re.search(r'\d+ frame\(s\) \(up to 0\.\d\d s\) could be decoded; the rest, about 0\.\d\d s of the '
                     r'0\.96 s it declares, about \d+ frame\(s\), is lost', result.stderr), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['cut.mkv', 'identity.pth', 'identity.yml', 'whole.mkv']


def test_a_gopro_sequence_of_phone_frames_is_restored_upright_saying_what_was_read(identity_options, tmp_path):
    """A sequence folder holding blur_gamma (JPEGs stored turned, EXIF orientation 6) and blur: the run says once
    which it read and how to read the other, and that the frames were turned; the PNGs written are upright."""
    seq = tmp_path / 'GOPRO' / 'SEQ'
    for sub in ('blur_gamma', 'blur'):
        (seq / sub).mkdir(parents=True)
        for index in range(3):
            exif_jpeg(seq / sub / f'{index:06d}.jpg', np.ascontiguousarray(np.rot90(pattern())), 6)
    out, summary = tmp_path / 'out', tmp_path / 'summary.json'
    result = deblur(tmp_path / 'GOPRO', '-o', out, '--opt', identity_options, '--summary', summary, fresh=False)
    assert result.returncode == 0, result.stderr[-2000:]
    read_note = f'SEQ: read {seq / "blur_gamma"}; {seq / "blur"}, also there, was not read (give that folder as the'
    turned_note = 'SEQ: 3 of 3 frames rotated by EXIF orientation 6 (rotated 90 degrees clockwise)'
    assert result.stdout.count(read_note) == 1 and result.stdout.count(turned_note) == 1, result.stdout
    (reported, ) = json.loads(summary.read_text())['sequences']
    assert [f'SEQ: {note}' for note in reported['notes']] == [line.strip() for line in result.stdout.splitlines()
                                                              if line.startswith('  SEQ: ')]
    for index in range(3):
        frame = cv2.imread(str(out / f'{index:06d}.png'))[..., ::-1]
        assert frame.shape == (45, 67, 3)  # stored 67x45, shown (and written) 45x67
        for (y, x), colour in (((7, 10), (255, 0, 0)), ((7, 56), (0, 255, 0)), ((37, 10), (0, 0, 255))):
            assert np.abs(frame[y, x].astype(int) - colour).max() < 30, ((y, x), frame[y, x])


@pytest.mark.slow
@pytest.mark.parametrize('mode', (['--window', '10', '--overlap', '2'], ['--exact']), ids=('windows', 'exact'))
def test_memory_does_not_grow_with_the_length_of_the_video(tool_options, tmp_path, mode):
    """300 frames peak within 20% of 30 frames (streamed windows, or --exact's scratch files; the process's peak
    resident memory)."""
    rng = np.random.default_rng(1)
    peaks = {}
    for length in (30, 300):
        video = tmp_path / f'{length}.mp4'
        write_video(video, [rng.integers(0, 256, (64, 96, 3), np.uint8) for _ in range(length)])
        summary = tmp_path / f'{length}_summary.json'
        result = deblur(video, '-o', tmp_path / f'{length}_out.mp4', '--opt', tool_options, *mode,
                        '--scratch', tmp_path, '--summary', summary)
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[length] = json.loads(summary.read_text())['sequences'][0]['peak_memory_mib']
        assert video_facts(tmp_path / f'{length}_out.mp4')[0] == length
    assert peaks[300] <= 1.2 * peaks[30], peaks


def test_test_harness_fast_option_matches_the_plain_path(memdeblur_official_checkpoint, tmp_path):
    """tools/test.py with val.fast (and bfloat16) gives the plain path's outputs."""
    from basicsr.models import build_model
    opt = {'name': 'fast', 'model_type': 'MemDeblurModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
           'network_g': {'type': 'MemDeblurNet'}, 'val': {'fast': True},
           'path': {'pretrain_network_g': memdeblur_official_checkpoint, 'strict_load_g': True,
                    'results_root': str(tmp_path), 'log': str(tmp_path), 'visualization': str(tmp_path)}}
    clip = torch.rand(1, 3, 3, 64, 96)
    outputs = {}
    for fast, precision in ((False, 'float32'), (True, 'float32'), (True, 'bfloat16')):
        opt['val'].update(fast=fast, precision=precision)
        model = build_model(opt)
        model.feed_data({'lq': clip})
        model.test()
        outputs[fast, precision] = model.output
    assert (outputs[True, 'float32'] - outputs[False, 'float32']).abs().max() < 1e-4
    assert outputs[True, 'bfloat16'].dtype == torch.float32
    assert (outputs[True, 'bfloat16'] - outputs[False, 'float32']).abs().mean() < 0.05


def test_exact_mode_equals_whole_sequence_processing(tool_options, synthetic_gopro, tmp_path):
    """--exact's frames are the whole-sequence outputs of the network, bit for bit; windows differ slightly."""
    folder = synthetic_gopro / 'test' / 'SYN001_test_00' / 'blur_gamma'
    files = sorted(folder.iterdir())
    clip = torch.stack([torch.from_numpy(cv2.imread(str(f))[..., ::-1].copy()).permute(2, 0, 1).float().div_(255)
                        for f in files])
    with open(tool_options) as f:
        weights = yaml.safe_load(f)['path']['pretrain_network_g']
    net = MemDeblurNet(**TINY_MEMDEBLUR)
    net.load_state_dict(torch.load(weights)['params'])
    with torch.inference_mode():
        whole = net.eval()(clip[None])[0].clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
    outputs = {}
    for name, args in (('exact', ['--exact', '--plain', '--scratch', tmp_path]),
                       ('windows', ['--plain', '--window', 4, '--overlap', 1])):
        out = tmp_path / name
        result = deblur(folder, '-o', out, '--opt', tool_options, *args)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[name] = np.stack([cv2.imread(str(out / f.name))[..., ::-1] for f in files])
    assert np.array_equal(outputs['exact'], whole)
    assert not np.array_equal(outputs['windows'], whole)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('memdeblur_exact_')]  # scratch removed
    tiled = deblur(folder, '-o', tmp_path / 'tiled', '--opt', tool_options, '--exact', '--tile', 32)
    assert tiled.returncode != 0 and '--exact restores whole frames' in tiled.stderr
    with pytest.raises(DataError, match='exact whole-sequence restoration needs a network with whole-sequence passes'):
        check_exact_supported(ESTRNNNet(n_features=8, n_blocks=2))
