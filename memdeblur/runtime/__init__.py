"""Running a model on frames: frames in, frames out, knowing no file, flag or process group.

``Restorer`` (``restorer``) restores sequences with one clip model, opened by ``open_model`` from the backend table
(``backends``: PyTorch, ONNX Runtime, OpenVINO), cut into windows and tiles or restored whole (``settings``,
``windows``, ``exact``).
"""
from memdeblur.runtime.backends import BACKENDS, open_model  # noqa: F401
from memdeblur.runtime.restorer import Restorer  # noqa: F401
