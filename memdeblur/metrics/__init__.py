"""Imports every `*_metric.py` module of this folder so that its functions register in BasicSR."""
from memdeblur.utils.registration import import_modules_with_suffix

import_modules_with_suffix(__name__, __file__, '_metric.py')
