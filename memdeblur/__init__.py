"""memdeblur: Multi-Scale Memory-Based Video Deblurring (Ji & Yao, CVPR 2022) for BasicSR.

Importing the package first closes BasicSR's compatibility gaps, then imports every
architecture, dataset, loss and model module so that BasicSR's registries know them.
"""
from memdeblur import basicsr_compat  # noqa: F401  (must precede every basicsr import)
from memdeblur import archs, data, losses, metrics, models  # noqa: F401,E402
from memdeblur.version import __version__  # noqa: F401,E402
