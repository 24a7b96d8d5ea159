"""MemDeblurModel: VideoDeblurModel trained on all of MemDeblurNet's scales, as the released recipe."""
from basicsr.utils.registry import MODEL_REGISTRY

from memdeblur.models.video_deblur_model import VideoDeblurModel


@MODEL_REGISTRY.register()
class MemDeblurModel(VideoDeblurModel):
    """The loss (``MultiScaleCharbonnierLoss``) sees every scale's output, coarse to fine."""

    def training_outputs(self):
        return self.net_g(self.lq, return_scales=True)
