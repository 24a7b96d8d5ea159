"""One test per BasicSR gap closed in memdeblur.basicsr_compat."""
import os
import subprocess
import sys

import torch

from memdeblur import basicsr_compat


def test_basicsr_imports_after_memdeblur_on_current_torchvision():
    """Gap 1: a fresh interpreter imports basicsr (all of it) once memdeblur is imported."""
    code = ('import memdeblur, basicsr, basicsr.data.degradations as d; '
            'from basicsr.utils.registry import ARCH_REGISTRY; '
            'print(ARCH_REGISTRY.get("MemDeblurNet").__name__)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'MemDeblurNet'


def test_aliased_grayscale_is_torchvisions_function():
    """The alias must serve the function BasicSR's degradations use, with its behaviour."""
    from basicsr.data import degradations
    from torchvision.transforms import functional
    assert degradations.rgb_to_grayscale is functional.rgb_to_grayscale
    image = torch.rand(1, 3, 4, 4)
    gray = degradations.rgb_to_grayscale(image)
    expected = 0.2989 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]
    assert torch.allclose(gray[:, 0], expected, atol=1e-6)


def test_resume_state_loads_on_cpu_from_the_experiment_folder(tmp_path):
    """Gap 2: the newest state under opt['path']['training_states'] loads without CUDA."""
    import basicsr.train
    states = tmp_path / 'experiments' / 'exp' / 'training_states'
    states.mkdir(parents=True)
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([param])
    param.grad = torch.ones(2)
    optimizer.step()
    (tmp_path / 'models').mkdir()
    for iteration in (2, 10, 4):
        torch.save({'iter': iteration, 'epoch': 0, 'optimizers': [optimizer.state_dict()], 'schedulers': []},
                   states / f'{iteration}.state')
        torch.save({'params': {'w': param.detach()}}, tmp_path / 'models' / f'net_g_{iteration}.pth')
    opt = {'auto_resume': True, 'name': 'exp', 'network_g': {},
           'path': {'training_states': str(states), 'models': str(tmp_path / 'models'), 'resume_state': None}}
    with basicsr_compat.pipeline_gaps():
        state = basicsr.train.load_resume_state(opt)
        assert basicsr.train.load_resume_state({'auto_resume': False, 'path': {'resume_state': None}}) is None
    assert state['iter'] == 10 and opt['path']['resume_state'] == str(states / '10.state')
    assert opt['path']['pretrain_network_g'] == str(tmp_path / 'models' / 'net_g_10.pth')
    assert state['optimizers'][0]['state'][0]['exp_avg'].device.type == 'cpu'


def test_auto_resume_skips_a_truncated_state_or_checkpoint_with_a_warning(tmp_path, basicsr_log):
    """Gap 7: a state (or its network file) cut short by a kill is skipped; the previous one is taken."""
    import basicsr.train
    states, models = tmp_path / 'training_states', tmp_path / 'models'
    states.mkdir()
    models.mkdir()
    for iteration in (4, 8, 12):
        torch.save({'iter': iteration, 'epoch': 1, 'optimizers': [], 'schedulers': []}, states / f'{iteration}.state')
        torch.save({'params': {'w': torch.ones(3)}}, models / f'net_g_{iteration}.pth')
    full = (states / '12.state').read_bytes()
    (states / '12.state').write_bytes(full[:len(full) // 2])
    network = (models / 'net_g_8.pth').read_bytes()
    (models / 'net_g_8.pth').write_bytes(network[:40])
    opt = {'auto_resume': True, 'name': 'exp', 'network_g': {},
           'path': {'training_states': str(states), 'models': str(models), 'resume_state': None}}
    with basicsr_compat.pipeline_gaps():
        state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 4 and opt['path']['pretrain_network_g'] == str(models / 'net_g_4.pth')
    warnings = basicsr_log
    assert any('skipping iteration 12' in w and '12.state' in w for w in warnings), warnings
    assert any('skipping iteration 8' in w for w in warnings), warnings
    assert (states / '12.state').read_bytes() == full[:len(full) // 2]  # nothing deleted


def test_distributed_init_without_gpus_uses_gloo():
    """Gap 3: BasicSR's init_dist path (through parse_options) works on a CPU-only machine."""
    code = ('import os, memdeblur.basicsr_compat as c, basicsr.utils.options as o, torch.distributed as d; '
            'os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29531"); '
            'g = c.pipeline_gaps(); g.__enter__(); '
            'o.init_dist("pytorch"); print(d.get_backend(), d.get_world_size()); d.destroy_process_group()')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env={**os.environ, 'CUDA_VISIBLE_DEVICES': ''})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['gloo', '1']


def test_enough_epochs_to_reach_total_iter_when_the_last_batch_is_dropped(synthetic_gopro):
    """Gap 6: 10 clips at batch 3 are 3 iterations per epoch, not ceil(10 / 3) = 4."""
    import logging

    import basicsr.train
    opt = {'world_size': 1, 'rank': 0, 'num_gpu': 0, 'dist': False, 'manual_seed': 0, 'train': {'total_iter': 24},
           'datasets': {'train': {'name': 'train', 'type': 'VideoDeblurDataset', 'phase': 'train',
                                  'dataroot': str(synthetic_gopro / 'train'), 'num_frame': 4, 'gt_size': 32,
                                  'num_worker_per_gpu': 0, 'batch_size_per_gpu': 3}}}
    logger = logging.getLogger('test')
    with basicsr_compat.pipeline_gaps():
        loader, _, _, total_epochs, total_iters = basicsr.train.create_train_val_dataloader(opt, logger)
    assert len(loader.dataset) == 10 and len(loader) == 3
    assert (total_epochs + 1) * len(loader) >= total_iters == 24  # BasicSR trains epochs 0..total_epochs
    _, _, _, basicsr_epochs, _ = basicsr_compat._basicsr_create_train_val_dataloader(opt, logger)
    assert (basicsr_epochs + 1) * len(loader) < 24  # the gap: BasicSR alone stops at iteration 21


def test_importing_memdeblur_leaves_basicsrs_pipeline_as_it_is():
    """Gaps 2, 3 and 6 are closed where our entry points run BasicSR's pipeline, not by ``import memdeblur``."""
    import basicsr.train
    import basicsr.utils.options
    patched = [(basicsr.train, 'load_resume_state'), (basicsr.train, 'create_train_val_dataloader'),
               (basicsr.utils.options, 'init_dist')]
    originals = [getattr(module, name) for module, name in patched]
    assert all(f.__module__.startswith('basicsr.') for f in originals)
    with basicsr_compat.pipeline_gaps():
        assert all(getattr(module, name).__module__ == 'memdeblur.basicsr_compat' for module, name in patched)
    assert [getattr(module, name) for module, name in patched] == originals


def test_basicvsrpp_has_its_deformable_alignment_without_cuda(monkeypatch):
    """Gap 8: built on a CPU, BasicVSR++ is the same network (same keys) as on a GPU, and aligns."""
    import torchvision
    from basicsr.archs import build_network
    options = {'type': 'BasicVSRPlusPlus', 'mid_channels': 16, 'num_blocks': 1, 'is_low_res_input': False}
    net = build_network(options)
    assert net.is_with_alignment and list(net.deform_align) == ['backward_1', 'forward_1', 'backward_2', 'forward_2']
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # what BasicSR builds on a GPU machine
    assert list(build_network(options).state_dict()) == list(net.state_dict())
    monkeypatch.undo()
    calls = []
    original = torchvision.ops.deform_conv2d
    monkeypatch.setattr(torchvision.ops, 'deform_conv2d', lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.no_grad():
        assert net(torch.rand(1, 3, 3, 256, 256)).shape == (1, 3, 3, 256, 256)
    assert calls


def test_final_validation_is_labelled_with_the_last_iteration(tmp_path, monkeypatch):
    """Gap 9: the loop hands the final validation iteration total_iter + 2 after two empty epochs."""
    from basicsr.models import build_model

    from memdeblur.models.video_deblur_model import VideoDeblurModel
    from tests.conftest import TINY_MEMDEBLUR
    from tests.pipeline_helpers import in_process_training_options
    opt = in_process_training_options('train_memdeblur_synthetic.yml', tmp_path)
    opt['network_g'].update(TINY_MEMDEBLUR)
    model = build_model(opt)
    labels = []
    monkeypatch.setattr(VideoDeblurModel, 'nondist_validation', lambda self, loader, it, tb, save: labels.append(it))
    total = opt['train']['total_iter']
    for current_iter in (total // 2, total, total + 2):
        model.validation(None, current_iter, None)
    assert labels == [total // 2, total, total]


def test_deformable_convolution_computes_in_float32_under_cpu_autocast():
    """Gap 13: EDVR's and BasicVSR++'s deformable convolution under bfloat16 training on a CPU: computed in
    float32 (close to the float32 result), returned in the input's dtype, gradients flowing to float32 weights."""
    import torchvision
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    offset = torch.randn(1, 18, 8, 8, generator=generator) * 0.5
    weight = torch.randn(4, 4, 3, 3, generator=generator, requires_grad=True)
    reference = torchvision.ops.deform_conv2d(x, offset, weight, padding=1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        output = torchvision.ops.deform_conv2d(x.bfloat16(), offset.bfloat16(), weight, padding=1)
    assert output.dtype == torch.bfloat16
    assert (output.float() - reference).abs().max() < 0.05 * reference.abs().max()
    output.float().sum().backward()
    assert weight.grad.dtype == torch.float32 and weight.grad.abs().sum() > 0
