"""What every backend gives the ``Restorer``: a ``ClipModel``, one model ready to run on one device in one precision.

A clip model restores a clip of frames, (T, 3, H, W) float in [0, 1] on the CPU, into its restored frames (T less
its ``margins``, clamped, on the CPU) and says what the ``Restorer`` must know to feed it: the past and future frames
it needs beyond those it restores (``margins``), the frame sizes it takes (``padding``), a window it was made for
(``fixed_window``: an exported model is traced for one number of frames), whether it restores whole sequences exactly
(``check_exact``), a ``label`` for outputs and a ``record`` of what determines its outputs. Windows, tiles, threads and
frame types are the ``Restorer``'s; a backend only runs clips.
"""
from memdeblur.runtime.windows import clip_window_restorer
from memdeblur.utils.option_check import OptionError
from memdeblur.utils.padding import SpatialPadding


class ClipModel:
    """One model as a backend runs it (subclasses set the attributes and ``restore_clip``).

    Attributes:
        backend (str): The backend's name in ``memdeblur.runtime.backends.BACKENDS``.
        device (torch.device): Where it runs.
        precision (str): ``float32``, ``bfloat16`` or ``float16``.
        label (str): The network and, for an exported model, its backend: ``MemDeblurNet, openvino``.
        margins (tuple[int, int]): Past and future frames it takes beyond those it restores.
        padding (SpatialPadding): The frame sizes it takes; frames are padded to them and the output cropped back.
        fixed_window (int | None): Frames it restores per clip when that is fixed (an exported model), else None.
        sources (list[str]): Files it was read from (a run never writes over them).
    """

    backend = None
    margins = (0, 0)
    padding = SpatialPadding()
    fixed_window = None

    def __init__(self, device, precision, label, sources=()):
        self.device, self.precision, self.label, self.sources = device, precision, label, list(sources)

    def restore_clip(self, clip):
        """(T, 3, H, W) float [0, 1] on the CPU -> (T - sum(margins), 3, H, W) restored, clamped, on the CPU."""
        raise NotImplementedError

    def window_function(self, tile, tile_overlap):
        """A function restoring a window (T, 3, H, W; uint8, uint16 or float in [0, 1]) to the same type, its margins
        added by reflection and its frames cut into tiles of ``tile`` pixels (0: whole frames)."""
        return clip_window_restorer(self.restore_clip, self.margins, tile, tile_overlap)

    def check_exact(self):
        """Raise ``OptionError`` unless this model restores whole sequences exactly (``restore_exact``)."""
        raise OptionError(f'{self.label}: exact whole-sequence restoration runs a PyTorch network with '
                          'whole-sequence passes; this model restores windows.')

    def restore_exact(self, frames, sink, scratch, on_write=None):
        """Restore a whole sequence as one (``memdeblur.runtime.exact.restore_exact``); after ``check_exact``."""
        self.check_exact()

    def exact_steps(self, num_frames):
        """Progress steps of ``restore_exact`` for ``num_frames`` frames."""
        return num_frames
