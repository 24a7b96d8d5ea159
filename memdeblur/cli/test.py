"""Test trained models with BasicSR's test pipeline: metrics tables, restored frames, comparisons.

examples:
  python tools/test.py -opt options/test_memdeblur_synthetic_pretrained.yml   # the shipped model (pretrained/)
  python tools/test.py -opt options/test_memdeblur_synthetic.yml          # the demo's model, once tools/demo.py trained it
  python tools/test.py -opt options/test_memdeblur_gopro_ds.yml           # the authors' GOPRO checkpoint
  python tools/test.py -opt options/test_memdeblur_gopro_ds.yml \\
      --force_yml datasets:test:dataroot=/data/GOPRO_Large/test path:pretrain_network_g=memdeblur_gopro_ds.pth.tar
  python tools/test.py -opt options/test_memdeblur_synthetic_pretrained.yml --force_yml val:fast=true \\
      val:precision=bfloat16

The synthetic options files test on datasets/synthetic_gopro, which python tools/demo.py (or
python tools/make_synthetic_gopro.py datasets/synthetic_gopro) makes; the GOPRO ones need the authors'
checkpoint and the GOPRO test set (README, "Models").

The checkpoint may be in BasicSR's format or the authors' original one. Writes, under
results/<name>/: <dataset>_metrics.md and .csv (per sequence and frame-averaged PSNR/SSIM of the
output and of the blurry input under BasicSR's and the released evaluation's conventions,
parameters, GMACs, runtime and peak memory), <dataset>_results.json (the same, for scripts:
memdeblur.evaluation.run_report.read_run_report), the restored frames as PNG and one labelled
blurry | restored | sharp picture per sequence under visualization/<dataset>/.
"""
import os

from basicsr.test import test_pipeline

from memdeblur.cli.command_line import run_basicsr_pipeline


def main(root, argv=None):
    """BasicSR's testing pipeline on the command line ``argv``, with ``results/`` in the folder ``root``
    (``tools/test.py``: the checkout, as BasicSR's ``root_path``)."""
    run_basicsr_pipeline(test_pipeline, root, __doc__, training=False, argv=argv)


def run():
    """The ``memdeblur-test`` command: ``results/`` in the current folder (an installed package has no checkout,
    and its own folder is no place for a user's runs)."""
    main(os.getcwd())
