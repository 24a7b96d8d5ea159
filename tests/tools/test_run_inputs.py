"""No run can replace its own inputs: every file a tool reads is an input of its output plan, with or without --force.

The first two tests read the tools themselves: every argument of every tool is classified (an input, which the run
notes through ``input_path``; an output; or not a path), and no tool or package module writes a file except through
``memdeblur.utils.outputs``, whose checks see every noted input. The others are the hostile commands: an output
named like the checkpoint, the options file, the weights the options file names, a folder holding one of them.
"""
import argparse
import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from memdeblur.cli.command_line import basicsr_parser, run_basicsr_pipeline
from tests.conftest import REPO_ROOT
from tests.pipeline_helpers import run_tool, tool_module

TOOLS = sorted(p.stem for p in Path(REPO_ROOT, 'tools').glob('*.py') if p.stem != '__init__')

# Every argument of every tool that takes a string: what it names when it is not an input (inputs are typed
# ``input_path`` and need no entry). A new argument fails the test until it is an input or listed here.
OUTPUTS = {'deblur_video': {'output', 'summary'}, 'export_onnx': {'output'}, 'convert_checkpoint': {'dst'},
           'compare': {'out'}, 'complexity': {'out'}, 'prepare_gopro': {'dst'}, 'make_synthetic_gopro': {'root'},
           'check_basicsr_suite': {'json'}}
NOT_PATHS = {'deblur_video': {'device', 'codec', 'scratch'}, 'prepare_gopro': {'splits', 'name'},
             'test': {'force_yml'}, 'train': {'force_yml'}}


def tool_parser_of(tool):
    """The argument parser of ``tools/<tool>.py`` (BasicSR's flags for train and test)."""
    if tool in ('train', 'test'):
        return basicsr_parser('', training=tool == 'train')
    return tool_module(tool).build_parser()


def is_input(action):
    return getattr(action.type, '__qualname__', '').startswith('input_path.')


@pytest.mark.parametrize('tool', TOOLS)
def test_every_argument_naming_a_file_is_an_input_or_a_planned_output(tool):
    parser = tool_parser_of(tool)
    takes_text = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._StoreTrueAction,
                                                                   argparse._StoreConstAction))
                  and a.choices is None and a.type in (None, str) or is_input(a)]
    unclassified = {a.dest for a in takes_text if not is_input(a)} - OUTPUTS.get(tool, set()) - NOT_PATHS.get(tool,
                                                                                                              set())
    assert not unclassified, f'tools/{tool}.py: {unclassified} neither inputs (type=input_path) nor listed here'
    for dest in OUTPUTS.get(tool, set()) | NOT_PATHS.get(tool, set()):
        assert dest in {a.dest for a in parser._actions}, (tool, dest)


# Where a file may be written other than through memdeblur.utils.outputs: inside a staging sibling that
# staged_outputs made (the writers, data preparation), a scratch or shared-run folder of the run's own, the
# kernel's clear_refs, and the staged copy a check tool makes of someone's checkout.
WRITES = re.compile(r"open\([^)]*['\"](w|wb|a|ab|x|r\+)['\"]|torch\.save\(|cv2\.imwrite|shutil\.(copy|move)|"
                    r"os\.(replace|rename)\(|\.savefig\(|np\.save\(|pickle\.dump\(")
STAGED = {'memdeblur/utils/outputs.py', 'memdeblur/utils/atomic_save.py', 'memdeblur/media/writers.py',
          'memdeblur/media/images.py', 'memdeblur/evaluation/no_reference.py', 'memdeblur/data/estrnn_lmdb.py',
          'memdeblur/video/process_share.py', 'memdeblur/utils/peak_memory.py', 'tools/check_basicsr_suite.py'}


def test_files_are_written_only_through_the_output_checks():
    offenders = []
    for folder in ('memdeblur', 'tools'):
        for path in sorted(Path(REPO_ROOT, folder).rglob('*.py')):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if relative not in STAGED and WRITES.search(path.read_text()):
                offenders.append(relative)
    assert not offenders, f'{offenders} write files without memdeblur.utils.outputs (or add them to STAGED, saying why)'


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def workspace(tmp_path):
    """A folder with a checkpoint, an options file naming it, and a short clip."""
    import av
    import numpy as np
    shutil.copy(os.path.join(REPO_ROOT, 'pretrained', 'memdeblur_synthetic.pth'), tmp_path / 'w.pth')
    opt = yaml.safe_load(Path(REPO_ROOT, 'options', 'test_memdeblur_synthetic.yml').read_text())
    opt['path']['pretrain_network_g'] = str(tmp_path / 'named.pth')
    shutil.copy(tmp_path / 'w.pth', tmp_path / 'named.pth')
    (tmp_path / 'net.yml').write_text(yaml.safe_dump(opt))
    rng = np.random.default_rng(0)
    with av.open(str(tmp_path / 'clip.mp4'), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 66, 46, 'yuv420p'
        for _ in range(3):
            frame = rng.choice([0, 255], (46, 66, 3)).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    return tmp_path


def assert_refused_unchanged(result, files, *words):
    """One error line naming ``words``, never suggesting --force; every file in ``files`` as it was."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr and result.stderr.startswith('error:'), result.stderr
    assert 'pass --force' not in result.stderr and 'which this run reads' in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    for path, before in files.items():
        assert digest(path) == before, f'{path} changed'


@pytest.mark.parametrize('force', [[], ['--force']])
@pytest.mark.parametrize('output_flag, target, named', [
    ('--summary', 'w.pth', '--ckpt'), ('--summary', 'net.yml', '--opt'), ('-o', 'net.yml', '--opt'),
    ('--summary', 'named.pth', "path:pretrain_network_g"), ('-o', 'clip.mp4', 'the input')])
def test_deblur_video_never_writes_over_what_it_reads(workspace, output_flag, target, named, force):
    files = {workspace / name: digest(workspace / name) for name in ('w.pth', 'net.yml', 'named.pth', 'clip.mp4')}
    outputs = {'-o': str(workspace / 'out.mp4'), '--summary': None, output_flag: str(workspace / target)}
    command = ['--opt', workspace / 'net.yml', *(['--ckpt', workspace / 'w.pth'] if target == 'w.pth' else [])]
    command += [arg for flag, value in outputs.items() if value for arg in (flag, value)]
    result = run_tool('deblur_video.py', workspace / 'clip.mp4', *command, *force)
    assert_refused_unchanged(result, files, named, target)
    assert not (workspace / 'out.mp4').exists()


def test_deblur_video_refuses_an_output_folder_holding_the_checkpoint(workspace):
    folder = workspace / 'models'
    folder.mkdir()
    shutil.move(workspace / 'w.pth', folder / 'w.pth')
    before = {folder / 'w.pth': digest(folder / 'w.pth')}
    result = run_tool('deblur_video.py', workspace / 'clip.mp4', '-o', folder, '--opt', workspace / 'net.yml',
                      '--ckpt', folder / 'w.pth', '--force')
    assert_refused_unchanged(result, before, 'contains --ckpt')


def test_export_and_convert_never_write_over_their_options_or_checkpoint(workspace):
    files = {workspace / name: digest(workspace / name) for name in ('w.pth', 'net.yml')}
    for output in ('net.yml', 'w.pth'):
        export = run_tool('export_onnx.py', workspace / 'w.pth', '--opt', workspace / 'net.yml', '-o',
                          workspace / output, '--force')
        assert_refused_unchanged(export, files, output)
    for force in ([], ['--force']):
        convert = run_tool('convert_checkpoint.py', workspace / 'w.pth', workspace / 'net.yml', '--opt',
                           workspace / 'net.yml', *force)
        assert_refused_unchanged(convert, files, '--opt')


def test_compare_refuses_an_output_folder_holding_an_options_file(workspace):
    (workspace / 'out').mkdir()
    shutil.copy(workspace / 'net.yml', workspace / 'out' / 'a.yml')
    opt = yaml.safe_load((workspace / 'net.yml').read_text())
    (workspace / 'out' / 'b.yml').write_text(yaml.safe_dump({**opt, 'name': 'other'}))
    files = {workspace / 'out' / name: digest(workspace / 'out' / name) for name in ('a.yml', 'b.yml')}
    result = run_tool('compare.py', '-opt', workspace / 'out' / 'a.yml', '-opt', workspace / 'out' / 'b.yml',
                      '--out', workspace / 'out', '--force')
    assert_refused_unchanged(result, files, 'contains -opt')


def run_pipeline(root, training, *argv):
    """``tools/train.py`` or ``tools/test.py`` up to BasicSR's pipeline, rooted at ``root``: (status, error line,
    whether the pipeline was started)."""
    started = []
    with pytest.raises(SystemExit) as exit_:
        run_basicsr_pipeline(started.append, str(root), '', training, [str(a) for a in argv])
    return exit_.value.code, started


def training_options(tmp_path, **path):
    opt = yaml.safe_load(Path(REPO_ROOT, 'options', 'train_memdeblur_synthetic.yml').read_text())
    opt['name'], opt['train']['total_iter'], opt['logger']['save_checkpoint_freq'] = 'mine', 3000, 1000
    opt['path'] = {**opt.get('path', {}), **path}
    for dataset in opt['datasets'].values():
        for key in [k for k in dataset if k.startswith('dataroot')]:
            dataset[key] = str(tmp_path / 'data')
    (tmp_path / 'train.yml').write_text(yaml.safe_dump(opt))
    return tmp_path / 'train.yml'


def experiment_files(tmp_path, *names):
    for name in names:
        path = tmp_path / 'experiments' / 'mine' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'weights')
    (tmp_path / 'experiments' / 'mine' / '.memdeblur-output.json').write_text('{"files": null}')


def test_training_never_saves_over_the_weights_it_starts_from(tmp_path, capsys):
    experiment_files(tmp_path, 'models/net_g_latest.pth', 'models/net_g_2000.pth', 'training_states/1000.state')
    models = tmp_path / 'experiments' / 'mine' / 'models'
    fresh = training_options(tmp_path, pretrain_network_g=str(models / 'net_g_latest.pth'))  # would be archived
    assert run_pipeline(tmp_path, True, '-opt', fresh) == (1, [])
    assert 'contains' in capsys.readouterr().err and (models / 'net_g_latest.pth').exists()
    later = training_options(tmp_path, pretrain_network_g=str(models / 'net_g_2000.pth'),
                             resume_state=str(models.parent / 'training_states' / '1000.state'))
    assert run_pipeline(tmp_path, True, '-opt', later) == (1, [])
    error = capsys.readouterr().err
    assert f'{models / "net_g_2000.pth"} is' in error and "train.yml's path:pretrain_network_g" in error
    resumed = training_options(tmp_path, resume_state=str(models.parent / 'training_states' / '1000.state'))
    assert run_pipeline(tmp_path, True, '-opt', resumed) == (0, [str(tmp_path)])  # resuming is no replacing


def test_a_test_never_archives_the_results_folder_holding_its_options(tmp_path, capsys):
    opt = yaml.safe_load(Path(REPO_ROOT, 'options', 'test_memdeblur_synthetic.yml').read_text())
    results = tmp_path / 'results' / opt['name']
    results.mkdir(parents=True)
    (results / '.memdeblur-output.json').write_text('{"files": null}')
    (results / 'test.yml').write_text(yaml.safe_dump(opt))
    assert run_pipeline(tmp_path, False, '-opt', results / 'test.yml') == (1, [])
    assert 'contains -opt' in capsys.readouterr().err and (results / 'test.yml').exists()


def test_the_library_never_writes_a_sequence_over_itself_or_over_its_model(workspace):
    from memdeblur.runtime.restorer import Restorer
    from memdeblur.video.deblurrer import VideoDeblurrer
    from memdeblur.media.inputs import find_inputs
    from memdeblur.utils.outputs import OutputError
    files = {workspace / name: digest(workspace / name) for name in ('named.pth', 'net.yml', 'clip.mp4')}
    deblurrer = VideoDeblurrer(Restorer.from_options(str(workspace / 'net.yml'), window=2, overlap=0))
    seq = find_inputs(str(workspace / 'clip.mp4'))[0]
    for output in ('clip.mp4', 'named.pth'):  # the sequence read, the weights the options file names
        with pytest.raises(OutputError, match='which this run reads'):
            deblurrer.deblur(seq, str(workspace / output), overwrite=True)
    for path, before in files.items():
        assert digest(path) == before
