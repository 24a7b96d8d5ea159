"""Exact whole-sequence restoration works for any network that speaks the protocol, not MemDeblur alone."""
import numpy as np
import torch
from torch import nn

from memdeblur.runtime.exact import restore_exact, whole_window_restorer
from memdeblur.networks.fast_runner import inference_runner
from memdeblur.runtime.restorer import Restorer
from memdeblur.networks.frame_storage import FinishedOutputs, InMemoryFrames
from memdeblur.networks.traits import NetworkTraits
from tests.runtime.test_restorer import saturated_frames


class TwoPassNet(nn.Module):
    """A small bidirectional recurrent network: a backward pass over every frame, then a forward pass reading the
    backward states; frames are centred and padded to even sides inside, as MemDeblur does."""

    def __init__(self, channels=4):
        super().__init__()
        self.channels = channels
        self.backward_cell = nn.Conv2d(3 + channels, channels, 3, padding=1)
        self.forward_cell = nn.Conv2d(3 + 2 * channels, channels, 3, padding=1)
        self.decoder = nn.Conv2d(channels, 3, 3, padding=1)

    def traits(self):
        return NetworkTraits(whole_sequence_passes=2)  # a backward state and an output per frame

    def forward(self, lqs):
        height, width = lqs.shape[-2:]
        outputs = self._restore(self._prepared(lqs.unbind(1), InMemoryFrames()), InMemoryFrames())
        return torch.stack(outputs, dim=1)[..., :height, :width] + 0.5

    def restore_frames(self, frames, storage):
        height, width = frames[0].shape[-2:]
        finished = FinishedOutputs(storage, lambda out: out[..., :height, :width] + 0.5)
        self._restore(self._prepared(frames, finished), finished)

    @staticmethod
    def _prepared(frames, storage):
        return storage.mapped('frames', lambda frame: nn.functional.pad(
            frame - 0.5, (0, frame.shape[-1] % 2, 0, frame.shape[-2] % 2), mode='replicate'), frames)

    def _restore(self, frames, storage):
        backward = storage.frames('backward', len(frames))
        state = frames[0].new_zeros(frames[0].shape[0], self.channels, *frames[0].shape[2:])
        for i in reversed(range(len(frames))):
            state = torch.tanh(self.backward_cell(torch.cat([frames[i], state], 1)))
            backward[i] = state
        outputs = storage.outputs(len(frames))
        state = torch.zeros_like(state)
        for i, frame in enumerate(frames):
            state = torch.tanh(self.forward_cell(torch.cat([frame, backward[i], state], 1)))
            outputs[i] = frame + self.decoder(state)
        return outputs


def test_a_second_network_declaring_the_protocol_restores_exactly_as_its_forward(tmp_path):
    torch.manual_seed(0)
    net = TwoPassNet().eval()
    frames = saturated_frames(7, 25, 31)
    clip = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in frames]).float() / 255
    with torch.inference_mode():
        whole = net(clip.unsqueeze(0))[0].clamp(0, 1)

    restored, steps = {}, []
    with torch.inference_mode():
        restore_exact(net, list(clip), restored.__setitem__, str(tmp_path), torch.device('cpu'),
                      on_write=lambda: steps.append(1))
    assert torch.equal(torch.stack([restored[i] for i in range(7)]), whole)
    assert len(steps) == 2 * 7  # the declared passes: one backward state file write and one output per frame
    assert list(tmp_path.iterdir()) == []  # the scratch files are removed

    restorer = Restorer(net, 'cpu', exact=True, scratch=str(tmp_path))
    assert restorer.exact_steps(7) == 14
    expected = whole.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert all(np.array_equal(r, e) for r, e in zip(restorer.restore(frames), expected))

    runner, context = inference_runner(net, 'cpu')
    window = (clip * 255).round().to(torch.uint8)
    with context():
        through_forward = (runner(clip.unsqueeze(0))[0].clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(whole_window_restorer(runner, context, 'cpu')(window), through_forward)


def test_exact_restoration_names_nothing_of_one_network():
    """``exact.py`` works through the protocol alone: no network's name, attributes or output convention."""
    import inspect

    from memdeblur.runtime import exact
    source = inspect.getsource(exact)
    for name in ('MemDeblur', 'ESTRNN', '.scales', 'bidirectional', 'deblur_branch', "'outputs", '0.5'):
        assert name not in source, name
