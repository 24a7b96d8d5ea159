"""One output plan per run of tools/deblur_video.py: no file of a run replaces another of its own files or an input;
--resume keeps only outputs made from the same input with the same settings; every valid output name can be staged.

An identity network stands in for the deblurring one (``identity_options``), so runs take a second."""
import json
import os

import cv2
import numpy as np
import torch

from memdeblur.media.writers import read_record
from tests.pipeline_helpers import run_tool


def deblur(*args):
    return run_tool('deblur_video.py', *args)


def frame_folder(folder, count=3, size=(24, 32), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / f'{index:06d}.png'), rng.integers(0, 256, (*size, 3)).astype(np.uint8))
    return folder


def test_summary_over_the_output_is_refused_before_anything_is_written(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clip')
    video = tmp_path / 'out.mp4'
    first = deblur(clip, '-o', video, '--opt', identity_options)
    assert first.returncode == 0, first.stderr
    before = video.read_bytes()
    for extra in (['--summary', video, '--force'], ['--summary', tmp_path / 'out_report.csv', '--report', '--force']):
        result = deblur(clip, '-o', video, '--opt', identity_options, *extra)
        assert result.returncode == 1 and 'would be both' in result.stderr, result.stderr
        assert video.read_bytes() == before  # the output it would have replaced is untouched
    assert not (tmp_path / 'out_report.csv').exists()


def test_a_file_planned_inside_a_frame_folder_output_is_refused(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clip')
    result = deblur(clip, '-o', tmp_path / 'frames', '--opt', identity_options,
                    '--summary', tmp_path / 'frames' / 'summary.json')
    assert result.returncode == 1 and 'would lie inside' in result.stderr and 'summary.json' in result.stderr
    assert not (tmp_path / 'frames').exists()


def test_two_frames_of_one_name_are_refused_naming_both(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clip', count=4)
    cv2.imwrite(str(clip / '000003.jpg'), np.full((24, 32, 3), 200, np.uint8))
    result = deblur(clip, '-o', tmp_path / 'frames', '--opt', identity_options)
    assert result.returncode == 1, result.stderr
    assert '000003.png' in result.stderr and '000003.jpg' in result.stderr
    assert not (tmp_path / 'frames').exists()
    video = deblur(clip, '-o', tmp_path / 'video.mp4', '--opt', identity_options)  # a video keeps all five frames
    assert video.returncode == 0, video.stderr


def test_an_output_name_as_long_as_the_file_system_allows_is_written(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clip')
    name = 'x' * (os.pathconf(tmp_path, 'PC_NAME_MAX') - 4) + '.mp4'
    result = deblur(clip, '-o', tmp_path / name, '--opt', identity_options, '--summary', tmp_path / 's.json')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / name).stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.partial') or p.name.endswith('.lock')) \
        == []


def test_a_video_keeps_the_record_of_what_made_it(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clip')
    for name in ('out.mp4', 'out.mkv', 'out.avi', 'out.webm', 'out.mov'):
        assert deblur(clip, '-o', tmp_path / name, '--opt', identity_options).returncode == 0
        record = json.loads(read_record(str(tmp_path / name)))
        assert record['settings']['--crf'] == 17, name
    again = deblur(clip, '-o', tmp_path / 'out.mkv', '--opt', identity_options, '--resume', '--crf', '20')
    assert again.returncode == 1 and '--crf' in again.stderr


def test_resume_keeps_only_outputs_made_with_the_same_settings(identity_options, tmp_path):
    clips = tmp_path / 'clips'
    for index in range(3):
        frame_folder(clips / f'seq{index}', seed=index)
    out = tmp_path / 'out'
    assert deblur(clips, '-o', out, '--opt', identity_options).returncode == 0
    same = deblur(clips, '-o', out, '--opt', identity_options, '--resume')
    assert same.returncode == 0 and '3 of 3 outputs exist and are kept' in same.stdout, same.stderr
    written = {p: p.read_bytes() for p in out.rglob('*.png')}
    changed = deblur(clips, '-o', out, '--opt', identity_options, '--resume', '--side-by-side')
    assert changed.returncode == 1 and '--side-by-side' in changed.stderr and 'seq0' in changed.stderr
    other_weights = tmp_path / 'other.pth'
    torch.save({'params': {}, 'note': torch.ones(1)}, other_weights)
    weights = deblur(clips, '-o', out, '--opt', identity_options, '--resume', '--ckpt', other_weights)
    assert weights.returncode == 1 and 'weights' in weights.stderr
    cv2.imwrite(str(clips / 'seq1' / '000009.png'), np.zeros((24, 32, 3), np.uint8))
    grown = deblur(clips, '-o', out, '--opt', identity_options, '--resume')
    assert grown.returncode == 1 and 'seq1 (the input changed)' in grown.stderr, grown.stderr
    assert {p: p.read_bytes() for p in out.rglob('*.png')} == written  # nothing was replaced
    (clips / 'seq1' / '000009.png').unlink()
    (out / 'seq2').rename(tmp_path / 'moved')  # an interrupted run: seq2 not done
    finished = deblur(clips, '-o', out, '--opt', identity_options, '--resume')
    assert finished.returncode == 0 and '2 of 3 outputs exist' in finished.stdout, finished.stderr
    assert {p: p.read_bytes() for p in out.rglob('*.png')} == written


def test_resume_refuses_an_output_without_a_record(identity_options, tmp_path):
    clip = frame_folder(tmp_path / 'clips' / 'seq0')
    frame_folder(tmp_path / 'clips' / 'seq1', seed=1)
    out = tmp_path / 'out'
    assert deblur(clip.parent, '-o', out, '--opt', identity_options).returncode == 0
    records = sorted(out.glob('*/.memdeblur-run.json'))  # kept inside each output
    assert len(records) == 2 and json.loads(records[0].read_text())['settings']['--window'] == 30
    records[0].unlink()
    result = deblur(clip.parent, '-o', out, '--opt', identity_options, '--resume')
    assert result.returncode == 1 and 'no record of the settings' in result.stderr
