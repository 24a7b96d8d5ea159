"""SlidingWindowModel: VideoDeblurModel for networks that restore the centre frame of a window (EDVR)."""
import torch
from basicsr.utils.registry import MODEL_REGISTRY

from memdeblur.utils.padding import reflect_indices
from memdeblur.models.video_deblur_model import VideoDeblurModel


@MODEL_REGISTRY.register()
class SlidingWindowModel(VideoDeblurModel):
    """Slides an N-frame window over every frame of a sequence; the network restores its centre.

    The window length N is the network's (``network_traits``: EDVR's ``num_frame``). Training clips must
    have N frames (the dataset's ``num_frame``); the loss compares the output with the centre
    frame's ground truth. Testing restores frame ``i`` from frames ``i - N//2 .. i + N//2``, the
    sequence extended by reflection at its ends, ``val.window_batch`` windows per forward pass
    (default 4). Frames are padded to the sizes the network takes (EDVR with ``hr_in``: multiples of 16).
    """

    def __init__(self, opt):
        super().__init__(opt)
        if not self.traits.restores_windows:
            raise ValueError(f'SlidingWindowModel: {opt["network_g"]["type"]} restores whole clips, not the centre of '
                             'a window; use model_type: VideoDeblurModel.')
        self.window = self.traits.window
        self.window_batch = (opt.get('val') or {}).get('window_batch', 4)

    def training_outputs(self):
        if self.lq.shape[1] != self.window:
            raise ValueError(f'SlidingWindowModel: training clips have {self.lq.shape[1]} frames but the network '
                             f'takes windows of {self.window}: set the train dataset\'s num_frame to {self.window}.')
        return self.spatial_padding.run(lambda frames: self.net_g(frames).unsqueeze(1), self.lq)[:, 0]

    def training_target(self):
        return self.gt[:, self.window // 2]

    def restore(self, net, lqs):
        """(1, T, 3, H, W) -> (1, T, 3, H, W): every frame restored from its reflected window."""
        num_frames, half = lqs.shape[1], self.window // 2
        order = reflect_indices(num_frames, half, half)
        windows = [order[i:i + self.window] for i in range(num_frames)]
        outputs = []
        for start in range(0, num_frames, self.window_batch):
            batch = torch.cat([lqs[:, w] for w in windows[start:start + self.window_batch]])
            outputs.append(self.spatial_padding.run(lambda frames: net(frames).unsqueeze(1), batch)[:, 0])
        return torch.cat(outputs).unsqueeze(0)
