"""Command lines of the tools: parsers with examples and defaults, and errors printed, not raised.

Every tool builds its parser with ``tool_parser(__doc__)``: the module docstring (what the tool
does, example commands) is the ``--help`` text, kept as written, and each option's default is
appended to its help unless the help already says it. ``tools/train.py`` and ``tools/test.py``
use ``basicsr_parser``: BasicSR's own parser has no description and offers training flags to
testing; ours validates the command line and documents it, the options file is read safely
(``memdeblur.run_options``), then BasicSR's pipeline runs on it (``run_basicsr_pipeline``).

Every argument naming a file or folder a tool reads has ``type=input_path(flag)``: the run notes it as an input
(``memdeblur.utils.run_inputs``), and no output of the run may be, hold or lie in it. Every tool runs its
``main`` through ``run_tool``, which collects those inputs for the run: the errors a user can cause (bad options,
data, checkpoints, outputs, files) print one ``error:`` line and exit with status 1; the full
traceback only with ``--debug``. SIGTERM is turned into an exception, so that temporary outputs
are removed as on Ctrl-C.
"""
import argparse
import signal
import sys

import yaml

from memdeblur.utils.errors import DataError
from memdeblur.video.process_share import PeerFailed
from memdeblur.models.training_step import TrainingDiverged
from memdeblur.networks.checkpoint import CheckpointError
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.outputs import OutputError
from memdeblur.utils.run_inputs import note_input, reading_run
from memdeblur.utils.threads import process_governor

# What a user's files, options and machine can cause (a loss that diverges: the learning rate or the data; another
# process of a torchrun run that failed: its own error); anything else is a bug and keeps its traceback.
USER_ERRORS = (OptionError, DataError, CheckpointError, OutputError, TrainingDiverged, PeerFailed, yaml.YAMLError,
               OSError)
DEBUG_HELP = 'show the full traceback of an error (default: one line saying what is wrong)'


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends ``(default: X)`` to options that have one."""

    def _get_help_string(self, action):
        text = action.help or ''
        has_default = not any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS))
        if (has_default and 'default' not in text
                and (action.option_strings or action.nargs in ('?', '*'))):
            text += ' (default: %(default)s)'
        return text


def tool_parser(doc, debug_help=DEBUG_HELP, **kwargs):
    """An ArgumentParser whose description is the tool's module docstring, with ``--debug``."""
    parser = argparse.ArgumentParser(description=doc.strip(), formatter_class=HelpFormatter, **kwargs)
    parser.add_argument('--debug', action='store_true', help=debug_help)
    return parser


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and context managers clean up."""


def _raise_terminated(signum, frame):
    raise Terminated(128 + signum)


def run_tool(main, argv=None):
    """Run a tool's ``main(argv)`` and exit with its status; user errors print ``error: ...`` and exit 1.

    With ``--debug`` on the command line, errors keep their traceback. Once ``main`` is over, SIGTERM ends the
    process as it normally does: the clean-up it interrupts is done, and an exception raised in the interpreter's
    shutdown (torchrun stops the other processes of a run that failed) would print a traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with reading_run():
            status = main(argv)
    except USER_ERRORS as err:
        if '--debug' in argv:
            raise
        status = f'error: {err}'
    except KeyboardInterrupt:
        if '--debug' in argv:
            raise
        status = 'interrupted; nothing partial was left in place of an output.'
    if isinstance(status, str):
        print(status, file=sys.stderr, flush=True)
        status = 1
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(status or 0)


def basicsr_parser(doc, training):
    """The flags of BasicSR's ``parse_options`` that apply to training (``training``) or testing."""
    debug_help = ("BasicSR's debug mode: print and validate every few iterations, name gets a debug_ prefix; "
                  "full tracebacks" if training else DEBUG_HELP)
    parser = tool_parser(doc, debug_help)
    parser.add_argument('-opt', required=True, type=input_path('-opt'), metavar='OPTIONS.yml',
                        help='options file (YAML)')
    parser.add_argument('--launcher', choices=('none', 'pytorch', 'slurm'), default='none',
                        help='multi-process launcher: pytorch under torchrun, slurm under srun')
    if training:
        parser.add_argument('--auto_resume', action='store_true',
                            help='resume from the newest readable training state of this experiment, if any')
    parser.add_argument('--local_rank', type=int, default=0, help='process rank (set by torch.distributed.launch)')
    parser.add_argument('--threads', type=int_at_least(1),
                        help='threads of the CPU\'s operators, fixed (default: chosen from the CPUs this process may '
                        'use and the load, and adapted while it runs; OMP_NUM_THREADS also fixes it)')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:SUBKEY=VALUE',
                        help='override options, e.g. datasets:test:dataroot=/data/GOPRO/test')
    return parser


def run_basicsr_pipeline(pipeline, root, doc, training, argv=None):
    """Run BasicSR's train or test ``pipeline`` in ``root`` (where ``experiments/`` and ``results/`` go) on
    the options file of the command line, read and checked by ``read_options`` and ``check_training_options``
    or ``check_test_options`` before anything runs.

    BasicSR sees the command line without ``--force_yml`` (applied here) and, when testing, without
    ``--debug`` (here: tracebacks), through ``basicsr_compat.trusted_pipeline``.
    """
    from memdeblur.basicsr_compat import trusted_pipeline
    from memdeblur.run_options import check_run_outputs, check_test_options, check_training_options, read_options

    def main(argv):
        args = basicsr_parser(doc, training).parse_args(argv)
        process_governor(args.threads)  # the CPU's thread count, fixed by --threads or chosen and adapted
        opt = read_options(args.opt, args.force_yml)
        (check_training_options if training else check_test_options)(opt, args.opt)
        debug_name = training and args.debug and not opt['name'].startswith('debug')  # BasicSR's debug prefix
        check_run_outputs({**opt, 'auto_resume': training and args.auto_resume}, root, training,
                          'debug_' + opt['name'] if debug_name else opt['name'])
        basicsr_argv = ['-opt', args.opt, '--launcher', args.launcher, '--local_rank', str(args.local_rank)]
        if training:
            basicsr_argv += ['--auto_resume'] * args.auto_resume + ['--debug'] * args.debug
        with trusted_pipeline(opt, basicsr_argv):
            pipeline(root)

    run_tool(main, argv)


def frame_size(text):
    """``HEIGHTxWIDTH`` (e.g. 720x1280) -> (height, width), for argparse's ``type=``; both at least 1."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'expected HEIGHTxWIDTH such as 720x1280, got {text!r}') from err
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'expected HEIGHTxWIDTH of at least 1x1 such as 720x1280, got {text!r}')
    return height, width


def int_at_least(minimum):
    """An argparse ``type=``: an integer no smaller than ``minimum`` (a count of frames, sequences, jobs...), so
    that ``--frames 0`` or ``-1`` is an error naming the flag instead of a traceback or a count of nothing."""

    def parse(text):
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from err
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse


def input_path(flag):
    """An argparse ``type=`` for the files or folders that ``flag`` names for the tool to read: each is noted as an
    input of the run (``memdeblur.utils.run_inputs``), so that no output can be, hold or lie in it."""

    def note(text):
        note_input(text, flag)
        return text

    return note
