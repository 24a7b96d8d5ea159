"""The backend table: one opener per name, the default of each kind of model its first row, ``open_model`` the one
way in; a backend added as a row is what the Restorer and the video tool run."""
import numpy as np
import pytest
import torch

from memdeblur.cli.deblur_video import build_parser
from memdeblur.runtime import Restorer
from memdeblur.runtime.backends import BACKENDS, EXPORTS, NETWORKS, Backend, default_backend, open_model, source_kind
from memdeblur.runtime.backends.base import ClipModel
from memdeblur.runtime.backends.pytorch_backend import PyTorchModel
from memdeblur.utils.option_check import OptionError
from tests.runtime.test_restorer import saturated_frames, tiny_memdeblur  # noqa: F401  (a fixture)


class Inverting(ClipModel):
    """A backend's model that computes something a network never would: each frame inverted, one past frame used."""

    backend = 'inverting'
    margins = (1, 0)

    def __init__(self, net, device, precision):
        super().__init__(device, precision, f'{type(net).__name__}, inverting')

    def restore_clip(self, clip):
        return 1 - clip[1:]


def test_a_backend_added_as_a_row_is_run_by_the_restorer_and_offered_by_the_tool(tiny_memdeblur, monkeypatch):
    monkeypatch.setitem(BACKENDS, 'inverting', Backend(NETWORKS, lambda net, device, precision, fast, compile_net:
                                                       Inverting(net, device, precision)))
    frames = saturated_frames(5, 33, 47)
    restorer = Restorer(tiny_memdeblur, backend='inverting', window=3, overlap=1)
    restored = list(restorer.restore(frames))
    assert restorer.label == 'deblurred (MemDeblurNet, inverting)'
    assert all(np.array_equal(out, 255 - frame) for out, frame in zip(restored, frames))  # the margin reflected
    assert 'inverting' in next(a for a in build_parser()._actions if a.dest == 'backend').choices


def test_the_default_backend_is_the_first_row_of_its_kind(tiny_memdeblur, tmp_path):
    assert default_backend(NETWORKS) == 'pytorch' and default_backend(EXPORTS) == 'onnxruntime'
    assert source_kind(tiny_memdeblur) == NETWORKS and source_kind(str(tmp_path / 'm.ONNX')) == EXPORTS
    model = open_model(tiny_memdeblur)
    assert isinstance(model, PyTorchModel) and (model.device, model.precision) == (torch.device('cpu'), 'float32')
    with pytest.raises(OptionError, match='a model is a network'):
        open_model(str(tmp_path / 'weights.pth'))
    with pytest.raises(OptionError, match=r"backend 'tensorrt': one of pytorch, onnxruntime, openvino"):
        open_model(tiny_memdeblur, 'tensorrt')


def test_a_clip_model_is_used_as_opened(tiny_memdeblur):
    model = open_model(tiny_memdeblur)
    assert open_model(model) is model and open_model(model, 'pytorch', 'cpu', 'float32') is model
    assert Restorer(model).model is model
    with pytest.raises(OptionError, match='already open with precision float32'):
        Restorer(model, precision='bfloat16')
