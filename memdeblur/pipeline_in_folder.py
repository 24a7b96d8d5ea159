"""BasicSR's train or test pipeline as ``tools/train.py`` and ``tools/test.py`` run it, with ``experiments/`` and
``results/`` in a folder of your choice instead of the checkout:

    python -m memdeblur.pipeline_in_folder train ROOT -opt OPTIONS.yml [--auto_resume] [--force_yml ...]
    python -m memdeblur.pipeline_in_folder test ROOT -opt OPTIONS.yml
    torchrun --nproc_per_node=2 -m memdeblur.pipeline_in_folder train ROOT -opt OPTIONS.yml --launcher pytorch

The benchmarks and the tests run it in temporary folders. Everything after ROOT is the
command line of ``tools/train.py`` or ``tools/test.py``.
"""
import sys

from memdeblur.cli.command_line import run_basicsr_pipeline

PIPELINES = ('train', 'test')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) < 2 or argv[0] not in PIPELINES:
        sys.exit(f'usage: python -m memdeblur.pipeline_in_folder {{{",".join(PIPELINES)}}} ROOT -opt OPTIONS.yml ...')
    kind, root, rest = argv[0], argv[1], argv[2:]
    if kind == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    run_basicsr_pipeline(pipeline, root, __doc__, kind == 'train', rest)


if __name__ == '__main__':
    main()
