"""BasicSR options that our model's overrides touch keep BasicSR's meaning (fix_flow:
tests/models/test_training_step.py)."""
import pytest
import torch
import torch.distributed as dist
from basicsr.models import build_model

from memdeblur.archs.memdeblur_arch import MemDeblurNet
from memdeblur.networks.checkpoint import CheckpointError, network_from_options
from tests.conftest import TINY_MEMDEBLUR
from tests.pipeline_helpers import in_process_training_options


def tiny_options(tmp_path):
    opt = in_process_training_options('train_memdeblur_synthetic.yml', tmp_path)
    opt['network_g'].update(TINY_MEMDEBLUR)
    return opt


def test_param_key_g_chooses_the_weights_loaded(tmp_path):
    """``path.param_key_g: params_ema`` loads the EMA weights of a checkpoint holding both (``load_network``)."""
    torch.manual_seed(0)
    plain, ema = MemDeblurNet(**TINY_MEMDEBLUR).state_dict(), MemDeblurNet(**TINY_MEMDEBLUR).state_dict()
    weights = tmp_path / 'both.pth'
    torch.save({'params': plain, 'params_ema': ema}, weights)
    for key, expected in (('params', plain), ('params_ema', ema)):
        opt = tiny_options(tmp_path / key)
        opt['path'].update(pretrain_network_g=str(weights), param_key_g=key, strict_load_g=True)
        loaded = build_model(opt).get_bare_model(build_model(opt).net_g).state_dict()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), key


def test_the_model_names_the_weights_chosen_as_every_tool_does(tmp_path):
    """``tools/test.py``, ``tools/train.py`` and ``tools/compare.py`` load through the model (``load_network``):
    params_ema that does not fit gets the message ``network_from_options`` (the video and export tools) gives,
    naming params_ema, where it was set, the file's weights and that params would fit."""
    weights = tmp_path / 'ema_misfit.pth'
    torch.save({'params': MemDeblurNet(**TINY_MEMDEBLUR).state_dict(),
                'params_ema': MemDeblurNet(**{**TINY_MEMDEBLUR, 'mid_channels': 8}).state_dict()}, weights)
    opt = tiny_options(tmp_path / 'run')
    opt['path'].update(pretrain_network_g=str(weights), param_key_g='params_ema', strict_load_g=True)
    with pytest.raises(CheckpointError) as by_model:
        build_model(opt)
    with pytest.raises(CheckpointError) as by_tools:
        network_from_options(opt, 'options.yml')
    assert str(by_model.value) == str(by_tools.value)
    assert str(by_model.value).endswith('Weights used: params_ema, set by path:param_key_g. The file holds params, '
                                        'params_ema; params would fit: set path:param_key_g: params.')


def test_find_unused_parameters_reaches_distributed_data_parallel(tmp_path):
    """``find_unused_parameters`` is passed to DDP by our ``model_to_device`` (CPU, gloo, one process)."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "rendezvous"}', rank=0, world_size=1)
    try:
        for value in (True, False):
            opt = tiny_options(tmp_path / str(value))
            opt.update(dist=True, find_unused_parameters=value)
            assert build_model(opt).net_g.find_unused_parameters is value
    finally:
        dist.destroy_process_group()
