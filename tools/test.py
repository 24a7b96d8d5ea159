"""Test with BasicSR's pipeline: python tools/test.py -opt options/test_memdeblur_gopro_ds.yml

Override options on the command line, e.g.
    --force_yml datasets:test:dataroot=/data/GOPRO_Large/test path:pretrain_network_g=memdeblur_gopro_ds.pth.tar
(the checkpoint may be in BasicSR or the authors' format). Tables go to results/<name>/, frames and
comparisons to results/<name>/visualization/.
"""
import os.path as osp

import memdeblur  # noqa: F401,I001  (first: closes BasicSR's gaps, registers everything)
from basicsr.test import test_pipeline

if __name__ == '__main__':
    test_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
