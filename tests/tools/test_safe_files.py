"""Other people's files are safe to use: nothing downloaded runs code, names cannot write outside their
folders, outputs are written whole or not at all and never over a user's files, errors are one line.

Every crafted file carries a payload that would create a marker file; each test checks that the
marker never appears and that the error names the file.
"""
import collections
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from memdeblur.basicsr_compat import archive_own_folder, load_resume_state
from memdeblur.utils.errors import DataError
from memdeblur.data.estrnn_lmdb import read_sequence_table, write_sequence_table
from memdeblur.data.prepare import write_basicsr_lmdb
from memdeblur.data.video_sources import build_video_source
from memdeblur.networks.checkpoint import CheckpointError
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import MANIFEST, OutputError, output_lock, staged_outputs
from memdeblur.run_options import read_options
from memdeblur.utils.safe_load import apply_overrides, load_options, parse_override
from memdeblur.media.writers import RECORD_FILE, open_writer
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import run_tool


class Payload:
    """Unpickling this runs ``touch <marker>``: what a crafted file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def assert_clear_error(result, *words):
    """Exit status 1, one ``error:`` message naming ``words``, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    assert 'error:' in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_options_files_are_read_safely_with_yaml_features_kept(tmp_path):
    marker = tmp_path / 'marker'
    crafted = tmp_path / 'crafted.yml'
    crafted.write_text('name: x\nmodel_type: MemDeblurModel\npath:\n'
                       f'  note: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(OptionError, match=r'crafted\.yml, line 4: .*python/object/apply.*refused'):
        load_options(crafted)
    assert not marker.exists()
    plain = tmp_path / 'plain.yml'
    plain.write_text('base: &base\n  lr: !!float 5e-4\n  beta: 0.9\ntrain:\n  <<: *base\n  beta: 0.99\n')
    assert load_options(plain)['train'] == {'lr': 5e-4, 'beta': 0.99}
    (tmp_path / 'list.yml').write_text('- 1\n- 2\n')
    with pytest.raises(OptionError, match='list.yml is not an options file'):
        load_options(tmp_path / 'list.yml')


@pytest.mark.parametrize('tool', ['test.py', 'train.py', 'check_data.py', 'complexity.py', 'deblur_video.py'])
def test_a_python_tag_in_an_options_file_runs_nothing_in_any_tool(tool, tmp_path):
    marker = tmp_path / 'marker'
    crafted = tmp_path / 'downloaded.yml'
    source = (Path(REPO_ROOT) / 'options' / 'test_memdeblur_synthetic.yml').read_text()
    crafted.write_text(source + f'\nextra: !!python/object/apply:os.system ["touch {marker}"]\n')
    args = {'deblur_video.py': [tmp_path, '-o', tmp_path / 'out.mp4', '--opt', crafted]}.get(tool, ['-opt', crafted])
    result = run_tool(tool, *args)
    assert_clear_error(result, 'downloaded.yml, line', 'python/object/apply')
    assert not marker.exists()


def test_force_yml_values_are_yaml_scalars_never_python(tmp_path):
    marker = tmp_path / 'marker'
    keys, value = parse_override(f"train:x=[__import__('os').system('touch {marker}')]")
    assert keys == ['train', 'x'] and isinstance(value, list) and isinstance(value[0], str)
    assert parse_override('val:fast=true')[1] is True and parse_override('a=none')[1] is None
    assert parse_override('train:lr=!!float 1e-4')[1] == 1e-4 and parse_override('a=[1, 2]')[1] == [1, 2]
    assert parse_override('datasets:test:dataroot=/data/a=b')[1] == '/data/a=b'  # only the first = splits
    opt = apply_overrides({'train': {}}, [f'train:y"]=1;__import__("os").system("touch {marker}");#=1'])
    assert not marker.exists() and list(opt['train']) == ['y"]']
    with pytest.raises(OptionError, match='no section nothere'):
        apply_overrides({}, ['nothere:key=1'])


@pytest.mark.parametrize('option, text', [('name', '../../escaped'), ('name', '/tmp/absolute'), ('name', '..'),
                                          ('datasets:test:name', '../x')])
def test_names_that_would_write_outside_their_folder_are_refused(option, text, tmp_path):
    opt = load_options(Path(REPO_ROOT) / 'options' / 'test_memdeblur_synthetic.yml')
    section = opt
    for key in option.split(':')[:-1]:
        section = section[key]
    section[option.split(':')[-1]] = text
    path = tmp_path / 'escaping.yml'
    path.write_text(yaml.safe_dump(opt))
    with pytest.raises(OptionError, match=rf'escaping\.yml: option {option} = .* folder name'):
        read_options(path)
    result = run_tool('test.py', '-opt', path)
    assert_clear_error(result, 'escaping.yml', option)
    result = run_tool('test.py', '-opt', Path(REPO_ROOT) / 'options' / 'test_memdeblur_synthetic.yml', '--force_yml',
                      f'{option}={text}')
    assert_clear_error(result, option)


def test_unknown_types_name_the_closest_registered_one(tmp_path):
    opt = load_options(Path(REPO_ROOT) / 'options' / 'test_memdeblur_synthetic.yml')
    opt['network_g']['type'] = 'MemDeblurNett'
    (tmp_path / 'typo.yml').write_text(yaml.safe_dump(opt))
    result = run_tool('test.py', '-opt', tmp_path / 'typo.yml')
    assert_clear_error(result, 'typo.yml', "network_g:type = 'MemDeblurNett'", "did you mean 'MemDeblurNet'?")


def test_estrnn_tables_are_read_without_running_code(tmp_path):
    real = tmp_path / 'real_info_train.pkl'
    write_sequence_table(real, [{'length': 8, 'name': 'GOPRO_0001', 'frame_names': ['a', 'b'], 'height': 4,
                                 'width': 6}])
    assert read_sequence_table(real)[0]['name'] == 'GOPRO_0001'
    numpy_made = tmp_path / 'numpy_info_train.pkl'  # tables written with numpy counts
    numpy_made.write_bytes(pickle.dumps({'num': np.int64(1), 'length': np.int64(8), 0: {'length': np.int64(8)}}))
    assert read_sequence_table(numpy_made) == [{'length': 8}]
    marker = tmp_path / 'marker'
    crafted = tmp_path / 'crafted_info_train.pkl'
    crafted.write_bytes(pickle.dumps({'num': 1, 'length': 8, 0: {'length': 8, 'x': Payload(marker)}}))
    with pytest.raises(DataError, match=r'crafted_info_train\.pkl .*refused to load posix\.system'):
        read_sequence_table(crafted)
    assert not marker.exists()
    escaping = tmp_path / 'escaping_info_train.pkl'
    write_sequence_table(escaping, [{'length': 8, 'name': '../../outside'}])
    with pytest.raises(DataError, match=r"escaping_info_train\.pkl: sequence 0 names '\.\./\.\./outside'"):
        read_sequence_table(escaping)


def test_check_data_refuses_a_crafted_table_and_runs_nothing(tmp_path):
    marker = tmp_path / 'marker'
    for suffix in ('', '_gt'):
        (tmp_path / f'gopro_ds_train{suffix}').mkdir()
    (tmp_path / 'gopro_ds_info_train.pkl').write_bytes(pickle.dumps({'num': 1, 0: {'length': Payload(marker)}}))
    opt = {'datasets': {'train': {'name': 'x', 'type': 'VideoDeblurDataset', 'dataroot': str(tmp_path),
                                  'layout': 'estrnn_lmdb', 'num_frame': 4}}}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    result = run_tool('check_data.py', '-opt', tmp_path / 'opt.yml', '--no-progress')
    assert result.returncode == 1 and 'gopro_ds_info_train.pkl' in result.stdout and 'refused' in result.stdout
    assert not marker.exists()


def test_lmdb_keys_that_would_write_outside_are_refused(synthetic_gopro, tmp_path):
    write_basicsr_lmdb(str(synthetic_gopro / 'train'), str(tmp_path / 'lmdb'), blur_dirs=('blur', ))
    for name in ('blur.lmdb', 'sharp.lmdb'):
        meta = tmp_path / 'lmdb' / name / 'meta_info.txt'
        meta.write_text(meta.read_text().replace('SYN001_train_00/', '../../outside/', 1))
    with pytest.raises(DataError, match=r"meta_info\.txt, line 1: key '\.\./\.\./outside/.*' names"):
        build_video_source({'dataroot': str(tmp_path / 'lmdb'), 'layout': 'lmdb', 'blur_dir': 'blur'})


def test_training_states_and_test_vectors_never_run_code(tmp_path):
    marker = tmp_path / 'marker'
    state = tmp_path / '5.state'
    torch.save({'epoch': 0, 'iter': 5, 'optimizers': [], 'schedulers': [Payload(marker)]}, state)
    opt = {'auto_resume': False, 'path': {'resume_state': str(state)}, 'is_train': True}
    with pytest.raises(CheckpointError, match=r'Training state .*5\.state.* could not be read'):
        load_resume_state(opt)
    assert not marker.exists()
    torch.save({'input': Payload(marker)}, tmp_path / 'io.pt')
    result = run_tool('verify_official_checkpoint.py', '--fixture-dir', tmp_path)
    assert_clear_error(result, 'io.pt')
    assert not marker.exists()


def test_archiving_renames_only_folders_a_memdeblur_run_made(tmp_path):
    users = tmp_path / 'experiments' / 'mine'
    users.mkdir(parents=True)
    (users / 'thesis.tex').write_text('precious')
    with pytest.raises(OutputError, match='was not made by a memdeblur run'):
        archive_own_folder(str(users))
    assert (users / 'thesis.tex').read_text() == 'precious' and len(list(users.parent.iterdir())) == 1
    ours = tmp_path / 'experiments' / 'run'
    archive_own_folder(str(ours))
    (ours / 'train.log').write_text('first run')
    archive_own_folder(str(ours))  # the second run of the same name archives the first
    archived = [p for p in ours.parent.iterdir() if p.name.startswith('run_archived_')]
    assert len(archived) == 1 and (archived[0] / 'train.log').read_text() == 'first run'
    assert (ours / MANIFEST).exists() and not (ours / 'train.log').exists()


def make_frames(folder, count=3, size=(16, 24)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f'{i:04d}.png'), rng.integers(0, 255, (*size, 3), dtype=np.uint8))


@pytest.fixture
def tool_options(tmp_path):
    """A test options file with a tiny MemDeblurNet and its weights (as in tests/tools/test_deblur_video.py)."""
    from basicsr.archs import build_network
    from tests.conftest import TINY_MEMDEBLUR
    net = build_network({'type': 'MemDeblurNet', **TINY_MEMDEBLUR})
    torch.save({'params': net.state_dict()}, tmp_path / 'tiny.pth')
    opt = {'name': 'tiny', 'model_type': 'MemDeblurModel', 'network_g': {'type': 'MemDeblurNet', **TINY_MEMDEBLUR},
           'path': {'pretrain_network_g': str(tmp_path / 'tiny.pth')}}
    (tmp_path / 'tiny.yml').write_text(yaml.safe_dump(opt))
    return tmp_path / 'tiny.yml'


def test_output_in_the_current_folder_or_around_the_input_is_refused_even_with_force(tool_options, tmp_path):
    work = tmp_path / 'work'
    make_frames(work / 'seq' / 'blur_gamma')
    (work / 'notes.txt').write_text('precious')
    before = sorted(p.relative_to(work) for p in work.rglob('*'))
    for output in ('.', str(work), 'seq', 'seq/blur_gamma', 'seq/blur_gamma/out'):
        result = run_tool('deblur_video.py', 'seq/blur_gamma', '-o', output, '--opt', tool_options, '--force', cwd=work)
        assert_clear_error(result, output.rstrip('/'))
    assert sorted(p.relative_to(work) for p in work.rglob('*')) == before
    assert (work / 'notes.txt').read_text() == 'precious'


def test_force_replaces_only_outputs_the_tool_wrote(tool_options, tmp_path):
    make_frames(tmp_path / 'frames')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'mine.txt').write_text('precious')
    result = run_tool('deblur_video.py', tmp_path / 'frames', '-o', out, '--opt', tool_options, '--force')
    assert_clear_error(result, 'memdeblur did not write', 'mine.txt')
    (out / 'mine.txt').unlink()
    for _ in range(2):  # the second run replaces what the first wrote
        result = run_tool('deblur_video.py', tmp_path / 'frames', '-o', out, '--opt', tool_options, '--force',
                          fresh=True)
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, RECORD_FILE, '0000.png', '0001.png', '0002.png']
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_a_second_writer_of_the_same_output_is_refused(tmp_path):
    target = tmp_path / 'out'
    with output_lock(target):
        with pytest.raises(OutputError, match='Another run is writing'):
            with staged_outputs(folders=[target]):
                pass
    with staged_outputs(folders=[target]) as staging:  # the lock is free again
        Path(staging[target]).mkdir()
    assert target.is_dir()
    with pytest.raises(FileExistsError):  # a run that started before the first finished does not replace it
        with staged_outputs(folders=[target]):
            pass


WRITE_FOREVER = '''
import sys, time, numpy as np
from fractions import Fraction
from memdeblur.cli.command_line import run_tool
from memdeblur.media.writers import open_writer

def main(argv):
    with open_writer(argv[0], Fraction(30), overwrite=True) as writer:
        while True:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            print(writer.count, flush=True)
            time.sleep(0.05)

run_tool(main)
'''


@pytest.mark.parametrize('kind', ['frames', 'video.mp4'])
def test_a_killed_run_leaves_the_previous_output_and_no_temporary(tmp_path, kind):
    output = tmp_path / kind
    with open_writer(str(output), 30) as writer:
        writer.write(np.full((16, 16, 3), 7, np.uint8))
    previous = sorted(p.name for p in output.iterdir()) if output.is_dir() else output.read_bytes()
    env = {**os.environ, 'PYTHONPATH': REPO_ROOT}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        # Ctrl-C as in a terminal: a shell's background job (CI may run us as one) inherits SIGINT ignored
        process = subprocess.Popen([sys.executable, '-c', WRITE_FOREVER, str(output)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        while int(process.stdout.readline() or 0) < 3:
            assert process.poll() is None, process.stderr.read()
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        assert 'Traceback' not in stderr
        now = sorted(p.name for p in output.iterdir()) if output.is_dir() else output.read_bytes()
        assert now == previous
        if sig != signal.SIGKILL:  # SIGKILL cannot be caught: its leftovers go with the next run
            assert not [p.name for p in tmp_path.iterdir() if p.name.startswith('.partial')]
    with open_writer(str(output), 30, overwrite=True) as writer:  # the next run removes what SIGKILL left
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.partial')]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / 'disk'
    mount.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {result.stderr.decode().strip()}')
    yield mount
    subprocess.run(['umount', str(mount)], check=True)


@pytest.mark.parametrize('kind', ['frames', 'video.mp4'])
def test_a_full_disk_is_an_error_that_leaves_nothing_partial(tool_options, tmp_path, small_disk, kind):
    make_frames(tmp_path / 'frames', count=12, size=(256, 256))
    output = small_disk / kind
    room = 512 * 1024 if kind == 'frames' else 48 * 1024  # a few frames at most / part of the encoded video
    (small_disk / 'filler').write_bytes(b'\0' * (2048 * 1024 - room))
    result = run_tool('deblur_video.py', tmp_path / 'frames', '-o', output, '--opt', tool_options, fresh=True)
    assert_clear_error(result, 'No space left on device')
    assert sorted(p.name for p in small_disk.iterdir()) == ['filler']


def limited_file_size(limit):
    """For ``preexec_fn``: files may grow to ``limit`` bytes (a full disk without mounting one); writing past it
    fails with EFBIG instead of killing the process."""

    def apply():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize('kind', ['frames', 'video.mp4'])
def test_a_write_that_cannot_complete_is_an_error_that_leaves_nothing_partial(tool_options, tmp_path, kind):
    make_frames(tmp_path / 'frames', count=12, size=(256, 256))
    output = tmp_path / 'out' / kind
    command = [sys.executable, os.path.join(REPO_ROOT, 'tools', 'deblur_video.py'), str(tmp_path / 'frames'), '-o',
               str(output), '--opt', str(tool_options)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': REPO_ROOT},
                            preexec_fn=limited_file_size(150_000 if kind == 'frames' else 60_000))
    assert_clear_error(result, 'File too large')
    assert list((tmp_path / 'out').iterdir()) == []


def test_prepare_gopro_refuses_its_own_source(synthetic_gopro, tmp_path):
    source = tmp_path / 'GOPRO'
    shutil.copytree(synthetic_gopro, source)
    before = sorted(str(p.relative_to(source)) for p in source.rglob('*'))
    for destination in (source, source / 'inside', tmp_path):
        result = run_tool('prepare_gopro.py', source, destination, '--format', 'folder', '--size', '32x48',
                          '--force')
        assert_clear_error(result, str(destination))
    assert sorted(str(p.relative_to(source)) for p in source.rglob('*')) == before


TOOLS_WITH_OPTIONS = {
    'train.py': ['-opt', '{opt}'], 'test.py': ['-opt', '{opt}'], 'check_data.py': ['-opt', '{opt}'],
    'complexity.py': ['-opt', '{opt}'], 'convert_checkpoint.py': ['{missing}', '{tmp}/out.pth', '--opt', '{opt}'],
    'deblur_video.py': ['{tmp}', '-o', '{tmp}/out.mp4', '--opt', '{opt}'],
    'compare.py': ['-opt', '{opt}', '-opt', '{opt}', '--out', '{tmp}/cmp'],
}


@pytest.mark.parametrize('tool', sorted(TOOLS_WITH_OPTIONS))
def test_every_tool_reports_a_broken_or_missing_options_file_in_one_line(tool, tmp_path):
    broken = tmp_path / 'broken.yml'
    broken.write_text('name: [unclosed\nmodel_type: x\n')
    for opt, words in ((broken, ['broken.yml, line']), (tmp_path / 'missing.yml', ['missing.yml', 'does not exist'])):
        args = [a.format(opt=opt, tmp=tmp_path, missing=tmp_path / 'nothing.pth') for a in TOOLS_WITH_OPTIONS[tool]]
        assert_clear_error(run_tool(tool, *args), *words)


@pytest.mark.parametrize('tool, args, words', [
    ('deblur_video.py', ['{tmp}/missing', '-o', '{tmp}/o.mp4', '--opt', '{opt}'], ['missing', 'does not exist']),
    ('deblur_video.py', ['{tmp}', '-o', '{tmp}/o.mp4', '--opt', '{opt}', '--device', 'cuda:3'], ['cuda:3']),
    ('deblur_video.py', ['{tmp}', '-o', '{tmp}/o.mp4', '--opt', '{opt}', '--overlap', '40'], ['--overlap 40']),
    ('prepare_gopro.py', ['{tmp}/missing', '{tmp}/dst', '--format', 'lmdb'], ['missing', 'not a folder']),
    ('convert_checkpoint.py', ['{tmp}/missing.pth', '{tmp}/dst.pth'], ['missing.pth', 'does not exist']),
    ('make_synthetic_gopro.py', ['{tmp}'], ['not an empty folder']),
    ('verify_official_checkpoint.py', ['--fixture-dir', '{tmp}/missing'], ['does not exist']),
    ('test.py', ['-opt', '{opt}', '--force_yml', 'num_gpu=4'], ['num_gpu: 4']),
])
def test_every_tool_reports_wrong_values_and_missing_files_in_one_line(tool, args, words, tool_options, tmp_path):
    args = [a.format(tmp=tmp_path, opt=tool_options) for a in args]
    assert_clear_error(run_tool(tool, *args), *words)


def test_debug_shows_the_traceback(tmp_path):
    result = run_tool('check_data.py', '-opt', tmp_path / 'missing.yml', '--debug', fresh=True)
    assert result.returncode == 1 and 'Traceback' in result.stderr and 'OptionError' in result.stderr


@pytest.mark.parametrize('change, words', [({'num_frame': 0}, ["'num_frame' must be an integer of at least 1"]),
                                           ({'gt_size': -64}, ["'gt_size'", 'at least 1']),
                                           ({'batch_size_per_gpu': 0}, ["'batch_size_per_gpu'"])])
def test_check_data_finds_values_out_of_range(synthetic_gopro, tmp_path, change, words):
    opt = {'datasets': {'train': {'name': 'x', 'type': 'VideoDeblurDataset', 'dataroot': str(synthetic_gopro / 'train'),
                                  'layout': 'gopro', 'num_frame': 4, 'gt_size': 32, **change}}}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    result = run_tool('check_data.py', '-opt', tmp_path / 'opt.yml', '--no-progress')
    assert result.returncode == 1 and all(w in result.stdout for w in words), result.stdout


def test_saved_training_states_are_plain_and_resume_their_counters(tmp_path):
    from tests.pipeline_helpers import in_process_training_options
    from basicsr.models import build_model
    opt = in_process_training_options('train_memdeblur_gopro.yml', tmp_path)
    opt['network_g'].update(mid_channels=8, num_blocks_forward=1, num_blocks_backward=1)
    model = build_model(opt)
    model.save_training_state(0, 3)
    state_path = Path(opt['path']['training_states']) / '3.state'
    state = torch.load(state_path, weights_only=True)  # no Counter inside
    model.resume_training(state)
    assert type(model.schedulers[0].milestones).__name__ == 'Counter'
    assert model.schedulers[0].milestones == collections.Counter(opt['train']['scheduler']['milestones'])
