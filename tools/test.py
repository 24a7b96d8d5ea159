"""Test trained models with BasicSR's test pipeline: metrics tables, restored frames, comparisons.

examples:
  python tools/test.py -opt options/test_memdeblur_synthetic.yml          # the shipped synthetic-data model
  python tools/test.py -opt options/test_memdeblur_gopro_ds.yml           # the authors' GOPRO checkpoint
  python tools/test.py -opt options/test_memdeblur_gopro_ds.yml \\
      --force_yml datasets:test:dataroot=/data/GOPRO_Large/test path:pretrain_network_g=memdeblur_gopro_ds.pth.tar
  python tools/test.py -opt options/test_memdeblur_synthetic.yml --force_yml val:fast=true val:precision=bfloat16

The checkpoint may be in BasicSR's format or the authors' original one. Writes, under
results/<name>/: <dataset>_metrics.md and .csv (per sequence and frame-averaged PSNR/SSIM of the
output and of the blurry input under BasicSR's and the released evaluation's conventions,
parameters, GMACs, runtime and peak memory), <dataset>_results.json (the same, for scripts:
memdeblur.evaluation.run_report.read_run_report), the restored frames as PNG and one labelled
blurry | restored | sharp picture per sequence under visualization/<dataset>/.
"""
import os.path as osp

import memdeblur  # noqa: F401,I001  (first: closes BasicSR's gaps, registers everything)
from basicsr.test import test_pipeline

from memdeblur.cli import run_basicsr_pipeline

if __name__ == '__main__':
    run_basicsr_pipeline(test_pipeline, osp.dirname(osp.dirname(osp.abspath(__file__))), __doc__, training=False)
