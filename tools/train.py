"""``python tools/train.py``: the command of ``memdeblur.cli.train``, with experiments/ in this checkout (BasicSR's root)."""
import os.path as osp

from memdeblur.cli.train import main

if __name__ == '__main__':
    main(osp.dirname(osp.dirname(osp.abspath(__file__))))
