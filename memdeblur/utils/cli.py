"""Command-line parsers for the tools: a description with examples, and every option's default.

Every tool builds its parser with ``tool_parser(__doc__)``: the module docstring (what the tool
does, example commands) is the ``--help`` text, kept as written, and each option's default is
appended to its help unless the help already says it. ``tools/train.py`` and ``tools/test.py``
use ``basicsr_parser``: BasicSR's own parser has no description and offers training flags to
testing; ours validates the command line and documents it, then BasicSR's pipeline (which reads
``sys.argv`` again) runs unchanged.
"""
import argparse
import os.path as osp
import sys


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends ``(default: X)`` to options that have one."""

    def _get_help_string(self, action):
        text = action.help or ''
        has_default = not any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS))
        if (has_default and 'default' not in text
                and (action.option_strings or action.nargs in ('?', '*'))):
            text += ' (default: %(default)s)'
        return text


def tool_parser(doc, **kwargs):
    """An ArgumentParser whose description is the tool's module docstring."""
    return argparse.ArgumentParser(description=doc.strip(), formatter_class=HelpFormatter, **kwargs)


def basicsr_parser(doc, training):
    """The flags of BasicSR's ``parse_options`` that apply to training (``training``) or testing."""
    parser = tool_parser(doc)
    parser.add_argument('-opt', required=True, metavar='OPTIONS.yml', help='options file (YAML)')
    parser.add_argument('--launcher', choices=('none', 'pytorch', 'slurm'), default='none',
                        help='multi-process launcher: pytorch under torchrun, slurm under srun')
    if training:
        parser.add_argument('--auto_resume', action='store_true',
                            help='resume from the newest readable training state of this experiment, if any')
        parser.add_argument('--debug', action='store_true',
                            help="BasicSR's debug mode: print and validate every few iterations, name gets a debug_ prefix")
    parser.add_argument('--local_rank', type=int, default=0, help='process rank (set by torch.distributed.launch)')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:SUBKEY=VALUE',
                        help='override options, e.g. datasets:test:dataroot=/data/GOPRO/test')
    return parser


def run_basicsr_pipeline(pipeline, root, doc, training, argv=None):
    """Validate the command line with ``basicsr_parser``, then run BasicSR's ``pipeline`` in ``root``
    (where ``experiments/`` and ``results/`` go).

    A missing options file is reported here, naming it, instead of as a traceback from BasicSR.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = basicsr_parser(doc, training).parse_args(argv)
    if not osp.isfile(args.opt):
        sys.exit(f'error: options file {args.opt} does not exist.')
    sys.argv = [sys.argv[0], *argv]
    pipeline(root)


def frame_size(text):
    """``HEIGHTxWIDTH`` (e.g. 720x1280) -> (height, width), for argparse's ``type=``."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'expected HEIGHTxWIDTH such as 720x1280, got {text!r}') from err
    return height, width
