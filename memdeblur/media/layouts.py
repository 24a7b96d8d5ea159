"""Where the published data sets keep a sequence's frames: one registry of folder layouts, read by the datasets
(``memdeblur.data.video_sources``) and by the video tool, which finds a sequence's blurry frames in any of them.

=========  ======================================  ===================
layout     blurry frames                           sharp frames
=========  ======================================  ===================
``gopro``  ``<SEQ>/blur`` or ``<SEQ>/blur_gamma``  ``<SEQ>/sharp``
``bsd``    ``<SEQ>/Blur/RGB``                      ``<SEQ>/Sharp/RGB``
``dvd``    ``<SEQ>/input``                         ``<SEQ>/GT``
=========  ======================================  ===================
"""
import os.path as osp
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class FolderLayout:
    """The subfolders of a sequence's folder that hold its frames in one data set's layout.

    Attributes:
        blurry (tuple[str, ...]): The folders that can hold its blurry frames; a dataset reads the one its
            ``blur_dir`` option names, the first by default.
        sharp (str): The folder of its sharp frames.
        read_first (str | None): The blurry folder the video tool reads when a sequence holds several (GOPRO's
            ``blur_gamma``: sub-frames averaged in linear light, as a sensor averages them); None: the first. The
            tool's notes name the folder read and the others (``memdeblur.media.inputs.folder_input``).
    """

    blurry: Tuple[str, ...]
    sharp: str
    read_first: Optional[str] = None

    @property
    def search_order(self):
        """Its blurry folders in the order a sequence's folder is searched for frames: ``read_first`` first."""
        return tuple(sorted(self.blurry, key=lambda folder: folder != self.read_first))


FOLDER_LAYOUTS = {
    'gopro': FolderLayout(('blur', 'blur_gamma'), 'sharp', read_first='blur_gamma'),
    'bsd': FolderLayout((osp.join('Blur', 'RGB'), ), osp.join('Sharp', 'RGB')),
    'dvd': FolderLayout(('input', ), 'GT'),
}
# every layout's blurry folders, where a sequence's folder given to the video tool is searched for its frames
BLURRY_FOLDERS = tuple(folder for layout in FOLDER_LAYOUTS.values() for folder in layout.search_order)
