"""``python tools/test.py``: the command of ``memdeblur.cli.test``, with results/ in this checkout (BasicSR's root)."""
import os.path as osp

from memdeblur.cli.test import main

if __name__ == '__main__':
    main(osp.dirname(osp.dirname(osp.abspath(__file__))))
