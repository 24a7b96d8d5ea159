"""Train with BasicSR's pipeline: python tools/train.py -opt options/train_memdeblur_gopro.yml [--auto_resume]

Multi-process: torchrun --nproc_per_node=N tools/train.py -opt ... --launcher pytorch
(GPUs with nccl, or CPU processes with gloo).
"""
import os.path as osp

import memdeblur  # noqa: F401,I001  (first: closes BasicSR's gaps, registers everything)
from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
