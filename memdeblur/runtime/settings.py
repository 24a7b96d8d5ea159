"""How a ``Restorer`` cuts a sequence: windows in time, tiles in space, or the whole sequence at once (exact),
resolved and checked once, here, from what a caller asks and what the model allows.

Defaults: windows of ``DEFAULT_WINDOW`` frames sharing ``DEFAULT_OVERLAP``; a model made for one window (an exported
model) restores that window, sharing a fifth of it (at most ``DEFAULT_OVERLAP``); frames larger than 1280x720 are cut
into tiles of ``AUTO_TILE`` pixels.
"""
import tempfile
from dataclasses import dataclass
from typing import Union

from memdeblur.utils.option_check import OptionError

AUTO_TILE_AREA = 1280 * 720  # frames larger than this are tiled by default
AUTO_TILE = 512
MIN_TILE = 32  # smaller tiles leave a network almost nothing around each pixel (MemDeblur's coarsest scale: 2x2)
DEFAULT_WINDOW = 30
DEFAULT_OVERLAP = 6
DEFAULT_TILE_OVERLAP = 32


@dataclass(frozen=True)
class RestoreSettings:
    """Windows, tiles and exact mode as a ``Restorer`` runs them (``resolve`` makes and checks them).

    Attributes:
        window (int): Frames restored together.
        overlap (int): Frames shared by consecutive windows.
        tile (int | str): Tile side in pixels, 0 for whole frames, ``auto`` (``tile_for``).
        tile_overlap (int): Pixels shared by neighbouring tiles.
        exact (bool): Each sequence restored as one whole.
        scratch (str): Folder of exact mode's scratch files.
    """

    window: int
    overlap: int
    tile: Union[int, str]
    tile_overlap: int
    exact: bool
    scratch: str

    @classmethod
    def resolve(cls, window=None, overlap=None, tile='auto', tile_overlap=DEFAULT_TILE_OVERLAP, exact=False,
                scratch=None, fixed_window=None, model='the model', name=str):
        """The settings of these requests for a model restoring ``fixed_window`` frames per clip (None: any).

        Args:
            window, overlap (int | None): None for the defaults (module docstring).
            tile, tile_overlap, exact, scratch: As the attributes; ``scratch`` None for the system's temporary folder.
            fixed_window (int | None): The window a model was made for (``ClipModel.fixed_window``).
            model (str): How messages name the model.
            name (callable): How the caller spells a setting in messages (default: as the ``Restorer``'s argument;
                a tool: its flag).

        Raises:
            OptionError: settings a ``Restorer`` cannot run, named by ``name``.
        """
        if fixed_window is not None and window not in (None, fixed_window):
            raise OptionError(f'{name("window")} {window}: {model} was exported for windows of {fixed_window} frames; '
                              f'use {fixed_window}, or export again for another window.')
        if window is None:
            window = fixed_window or DEFAULT_WINDOW
        if overlap is None:
            overlap = DEFAULT_OVERLAP if fixed_window is None else min(DEFAULT_OVERLAP, round(window / 5))
        check_settings(window, overlap, tile, tile_overlap, exact, name)
        return cls(window, overlap, tile, tile_overlap, exact, scratch or tempfile.gettempdir())

    def tile_for(self, height, width):
        """The tile side used for frames of this size (0: whole frames)."""
        if self.exact:
            return 0
        if self.tile == 'auto':
            return AUTO_TILE if height * width > AUTO_TILE_AREA else 0
        return self.tile


def check_settings(window, overlap, tile, tile_overlap, exact, name=str):
    """Raise ``OptionError`` for windows, tiles and exact mode a ``Restorer`` cannot run; ``name(setting)`` is how the
    caller spells a setting in the message."""
    if not isinstance(window, int) or window < 1 or not isinstance(overlap, int) or not 0 <= overlap < window:
        raise OptionError(f'{name("window")} {window} {name("overlap")} {overlap}: need window >= 1 and 0 <= overlap '
                          '< window.')
    if tile != 'auto' and (not isinstance(tile, int) or tile < 0):
        raise OptionError(f'{name("tile")} {tile!r}: auto, 0 (whole frames) or a side in pixels.')
    if exact and tile not in ('auto', 0):
        raise OptionError(f'{name("exact")} restores whole frames; drop {name("tile")} (or use windows without '
                          f'{name("exact")}).')
    if tile not in ('auto', 0):
        if tile < MIN_TILE:
            raise OptionError(f'{name("tile")} {tile}: tiles of fewer than {MIN_TILE} pixels leave the network too '
                              f'little to see; use 0 (whole frames) or a side of at least {MIN_TILE}.')
        if not isinstance(tile_overlap, int) or not 0 <= tile_overlap < tile:
            raise OptionError(f'{name("tile")} {tile} {name("tile_overlap")} {tile_overlap}: need 0 <= tile overlap '
                              '< tile.')
