"""ESTRNNModel: VideoDeblurModel for ESTRNN, which restores only the inner frames of what it is given."""
from basicsr.utils.registry import MODEL_REGISTRY

from memdeblur.models.video_deblur_model import VideoDeblurModel


@MODEL_REGISTRY.register()
class ESTRNNModel(VideoDeblurModel):
    """Trains on the inner frames of each clip (as ESTRNN's authors) and tests every frame: ``VideoDeblurModel``
    with ESTRNN's frame margins (``network_traits``), kept as its own name for options files.

    ESTRNN gives no output for the first ``past_frames`` and the last ``future_frames`` of its
    input. Training compares its outputs with the clip's inner ground-truth frames. Testing, by
    default, extends each sequence by reflection so that every frame is restored and scored
    (``val.border_frames: reflect``); ``val.border_frames: inner`` scores only the frames ESTRNN
    restores without padding, its authors' convention. The results table says which.
    """
