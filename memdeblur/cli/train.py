"""Train a model with BasicSR's training loop (memdeblur's networks, data sets, losses registered).

examples:
  python tools/train.py -opt options/train_memdeblur_synthetic.yml         # minutes on a CPU (the demo's)
  python tools/train.py -opt options/train_memdeblur_gopro_ds.yml          # the released recipe
  python tools/train.py -opt options/train_memdeblur_gopro_ds.yml --auto_resume
  python tools/train.py -opt options/train_memdeblur_synthetic.yml --force_yml train:precision=bfloat16 \\
      train:channels_last=true                                            # faster, not bit-exact
  python tools/train.py -opt options/paper/train_table1_slim.yml --force_yml train:total_iter=1000
  torchrun --nproc_per_node=4 tools/train.py -opt options/train_memdeblur_gopro_ds.yml --launcher pytorch

Checkpoints, training states and the log go to experiments/<name>/ (an earlier experiment of
the same name is archived, not overwritten, unless resuming); validation tables and images to
experiments/<name>/visualization/. GPUs are used when present (num_gpu: auto), else the CPU;
multi-process runs use nccl on GPUs and gloo on CPUs. options/README.md lists the options files and says
when to train in bfloat16 or float16 (train.precision) instead of the exact float32 recipe.
"""
import os

from basicsr.train import train_pipeline

from memdeblur.cli.command_line import run_basicsr_pipeline


def main(root, argv=None):
    """BasicSR's training pipeline on the command line ``argv``, with ``experiments/`` in the folder ``root``
    (``tools/train.py``: the checkout, as BasicSR's ``root_path``)."""
    run_basicsr_pipeline(train_pipeline, root, __doc__, training=True, argv=argv)


def run():
    """The ``memdeblur-train`` command: ``experiments/`` in the current folder (an installed package has no checkout,
    and its own folder is no place for a user's runs)."""
    main(os.getcwd())
