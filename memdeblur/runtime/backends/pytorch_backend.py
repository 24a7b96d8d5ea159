"""The PyTorch backend: a whole-clip network run on its fast path (``memdeblur.networks.fast_runner``), in windows,
tiles, or as whole sequences (exact).

MemDeblur on whole integer windows (no tiles, or one tile covering the frame) goes through
``whole_window_restorer`` (the same result in a quarter of the memory); tiles, float windows, ESTRNN (its past and
future frames added by reflection, so every frame is restored) and ``torch.compile``d networks (whose
``restore_frames`` would bypass the compiled forward) go through ``restore_clip`` on float32 clips.
"""
import torch
from torch import nn

from memdeblur.networks.fast_runner import inference_runner
from memdeblur.networks.traits import bare_network, network_traits
from memdeblur.runtime.backends.base import ClipModel
from memdeblur.runtime.exact import check_exact_supported, restore_exact, whole_window_restorer
from memdeblur.runtime.windows import clip_window_restorer
from memdeblur.utils.allocator import retain_freed_memory
from memdeblur.utils.option_check import OptionError


class PyTorchModel(ClipModel):
    """A network as a clip model.

    Args:
        net (nn.Module): A loaded whole-clip network (any ``network_traits`` but a window).
        device (torch.device): Where it runs.
        precision (str): ``float32``, ``bfloat16`` or ``float16`` (GPUs).
        fast (bool): The fast path (BatchNorms folded, channels-last); False runs the network as it is.
        compile_net (bool): ``torch.compile`` the network.
    """

    backend = 'pytorch'

    def __init__(self, net, device, precision='float32', fast=True, compile_net=False):
        if not isinstance(net, nn.Module):
            raise OptionError(f'the pytorch backend runs networks (nn.Module), not {type(net).__name__}.')
        traits = network_traits(net)
        name = type(bare_network(net)).__name__
        if traits.restores_windows:
            raise OptionError(f'{name} restores the centre of a {traits.window}-frame window; restore whole-clip '
                              'networks (MemDeblur, ESTRNN, BasicVSR++) here and test sliding-window networks (EDVR) '
                              'with tools/test.py.')
        super().__init__(device, precision, name)
        self.margins, self.padding = traits.frame_margins, traits.padding()
        self.network, self.context = inference_runner(net, device, precision, fast=fast, compile_net=compile_net)

    def restore_clip(self, clip):
        with self.context():
            return self.padding.run(self.network, clip.unsqueeze(0).to(self.device))[0].float().clamp(0, 1).cpu()

    def window_function(self, tile, tile_overlap):
        compiled = hasattr(self.network, '_orig_mod')
        whole = None if compiled or not network_traits(self.network).whole_sequence_passes else \
            whole_window_restorer(self.network, self.context, self.device)
        return clip_window_restorer(self.restore_clip, self.margins, tile, tile_overlap, whole)

    def check_exact(self):
        check_exact_supported(self.network)

    def restore_exact(self, frames, sink, scratch, on_write=None):
        with self.context():
            restore_exact(self.network, frames, sink, scratch, self.device, on_write=on_write)

    def exact_steps(self, num_frames):
        return num_frames * network_traits(self.network).whole_sequence_passes


def open_network(net, device, precision, fast=True, compile_net=False):
    """The backend's opener (``memdeblur.runtime.backends.BACKENDS``): ``PyTorchModel`` of ``net``; on the fast path
    on a CPU the process also keeps freed memory for reuse (``memdeblur.utils.allocator``: a process setting, which
    the benchmarks measure apart by making ``PyTorchModel`` themselves)."""
    device = torch.device(device)
    if device.type == 'cpu' and fast:
        retain_freed_memory()
    return PyTorchModel(net, device, precision, fast, compile_net)
