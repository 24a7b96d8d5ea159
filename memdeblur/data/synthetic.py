"""A small GOPRO-like data set made from photographs shipped with scikit-image.

GOPRO was filmed at 240 fps; each blurry frame averages 7-13 consecutive sharp frames and the
middle one is its ground truth. This module does the same with a virtual camera moving over a
real photograph:

* the camera follows a smooth random trajectory (translation, in-plane rotation, zoom), so
  blur varies across the frame (rotation and zoom blur grow away from the centre);
* a patch cut from another photograph moves independently in front of it, so blur is also
  non-uniform between object and background;
* every blurry frame averages ``subframes`` sharp sub-frames in linear light (sRGB decoded
  with gamma 2.2, averaged, re-encoded), which is what GOPRO's ``blur_gamma`` holds; ``blur``
  holds the plain average of the encoded sub-frames, as GOPRO's ``blur`` does;
* the middle sub-frame is the sharp frame.

Everything is seeded. ``write_synthetic_gopro`` writes the GOPRO_Large layout
(``<root>/{train,test}/<SEQ>/{blur,blur_gamma,sharp}/%06d.png``) and the settings that made it
(``<root>/settings.json``), so a set made by other settings is recognised (``settings_mismatch``).
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import skimage.data
from tqdm import tqdm

from memdeblur.media.images import to_integer_image, write_png
from memdeblur.utils.outputs import staged_outputs

PHOTOS = ('astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg', 'motorcycle_left.png')
GAMMA = 2.2


def load_photo(name):
    """A photograph bundled with scikit-image as float32 RGB in [0, 1] (read from disk, no download)."""
    path = osp.join(osp.dirname(skimage.data.__file__), name)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'Photograph {path} is missing from the installed scikit-image.')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


@dataclass
class MotionSettings:
    """Motion per sharp sub-frame; the defaults give GOPRO-strength blur (README, "Quick start").

    Pixel values are for a 256-pixel-high frame and scale with the frame height.
    """

    camera_speed: float = 2.0  # pixels per sub-frame
    camera_radius: float = 0.5  # radius of the camera's wandering, in frame heights
    camera_rotation: float = 0.15  # degrees per sub-frame
    camera_zoom: float = 0.002  # relative zoom change per sub-frame
    object_speed: float = 4.0  # pixels per sub-frame, relative to the background
    object_radius: float = 0.15  # radius of the object's wandering, in frame heights


def smooth_path(rng, steps, max_rate, wobble=0.3):
    """A 1-D trajectory starting at 0: a constant rate plus a slow sinusoidal wobble.

    The rate's magnitude is at least 0.6 ``max_rate`` and the wobble changes it by at most
    ``wobble * max_rate``, so the motion never stalls and every blurry frame is blurred.
    """
    t = np.arange(steps, dtype=np.float64)
    rate = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0) * max_rate
    period = rng.uniform(0.7, 2.0) * steps
    amplitude = wobble * max_rate * period / (2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    return rate * t + amplitude * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))


def wandering_path(rng, steps, speed, radius):
    """A 2-D trajectory (x, y) starting at (0, 0) that never stalls and never runs away.

    The point circles a tilted ellipse of semi-axes ``radius`` and 0.6-1.0 ``radius`` at 0.6-1.0
    ``speed`` per step along the major axis, its angular rate varied by a slow wobble (at most
    half the mean rate, so it never stops or turns back): blur is strong in every frame, its
    direction changes over the sequence, and however long the sequence the path stays within
    ``2 * radius`` of its start (a straight path would leave the picture).
    """
    t = np.arange(steps, dtype=np.float64)
    rate = rng.choice([-1, 1]) * rng.uniform(0.6, 1.0) * speed / radius
    period = rng.uniform(40, 120)
    wobble = 0.5 * abs(rate) * period / (2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    angle = rng.uniform(0, 2 * np.pi) + rate * t + wobble * np.sin(2 * np.pi * t / period + phase)
    major, minor = radius * np.cos(angle), rng.uniform(0.6, 1.0) * radius * np.sin(angle)
    tilt = rng.uniform(0, np.pi)
    x = major * np.cos(tilt) - minor * np.sin(tilt)
    y = major * np.sin(tilt) + minor * np.cos(tilt)
    return x - x[0], y - y[0]


class SequenceRenderer:
    """Renders the sharp sub-frames of one synthetic sequence.

    Args:
        rng (np.random.Generator): Source of all randomness of the sequence.
        height, width (int): Frame size.
        steps (int): Number of sharp sub-frames to render.
        motion (MotionSettings): Motion magnitudes.
    """

    def __init__(self, rng, height, width, steps, motion):
        self.height, self.width = height, width
        pixel_scale = height / 256.0
        background_name, object_name = rng.choice(PHOTOS, size=2, replace=False)
        background = load_photo(background_name)
        camera_radius = motion.camera_radius * height
        # a canvas large enough that the camera never leaves it (rotation, zoom, wandering)
        needed = 1.5 * np.hypot(height, width) + 4 * camera_radius
        scale = needed / min(background.shape[:2])
        self.background = cv2.resize(background, None, fx=scale, fy=scale,
                                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        self.camera_x, self.camera_y = wandering_path(rng, steps, motion.camera_speed * pixel_scale, camera_radius)
        self.camera_angle = smooth_path(rng, steps, motion.camera_rotation)
        self.camera_zoom = np.exp(smooth_path(rng, steps, motion.camera_zoom))
        self.object, self.object_mask = self._cut_object(rng, load_photo(object_name))
        object_x, object_y = wandering_path(rng, steps, motion.object_speed * pixel_scale,
                                            motion.object_radius * height)
        self.object_x = width * rng.uniform(0.35, 0.65) + object_x
        self.object_y = height * rng.uniform(0.35, 0.65) + object_y
        self.object_angle = smooth_path(rng, steps, 0.5)

    def _cut_object(self, rng, photo):
        """An elliptical patch of ``photo``, about a third of the frame, with a soft-edged mask."""
        obj_h, obj_w = int(self.height * rng.uniform(0.3, 0.45)), int(self.width * rng.uniform(0.2, 0.35))
        scale = max(obj_h / photo.shape[0], obj_w / photo.shape[1]) * rng.uniform(1.2, 2.0)
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        top = rng.integers(0, photo.shape[0] - obj_h + 1)
        left = rng.integers(0, photo.shape[1] - obj_w + 1)
        patch = photo[top:top + obj_h, left:left + obj_w]
        mask = np.zeros((obj_h, obj_w), np.float32)
        cv2.ellipse(mask, (obj_w // 2, obj_h // 2), (obj_w // 2 - 1, obj_h // 2 - 1), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        return patch, cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]

    def render(self, step):
        """Sharp sub-frame ``step`` as float32 RGB in [0, 1]."""
        canvas_h, canvas_w = self.background.shape[:2]
        centre = (canvas_w / 2 + self.camera_x[step], canvas_h / 2 + self.camera_y[step])
        # the camera's view: a rotated, zoomed window around ``centre``
        view = cv2.getRotationMatrix2D(centre, self.camera_angle[step], self.camera_zoom[step])
        view[:, 2] += np.array([self.width / 2, self.height / 2]) - centre
        frame = cv2.warpAffine(self.background, view, (self.width, self.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        obj_h, obj_w = self.object.shape[:2]
        placement = cv2.getRotationMatrix2D((obj_w / 2, obj_h / 2), self.object_angle[step], 1.0)
        placement[:, 2] += np.array([self.object_x[step] - obj_w / 2, self.object_y[step] - obj_h / 2])
        size = (self.width, self.height)
        obj = cv2.warpAffine(self.object, placement, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(self.object_mask, placement, size, flags=cv2.INTER_LINEAR)[..., None]
        return np.clip(frame * (1 - mask) + obj * mask, 0, 1)


def blur_from_subframes(subframes):
    """(blur, blur_gamma) from sharp sub-frames in [0, 1]: plain and linear-light averages."""
    stack = np.stack(subframes)
    plain = stack.mean(0)
    linear = np.power(stack, GAMMA).mean(0)
    return plain, np.power(linear, 1 / GAMMA)


def render_sequence(rng, num_frames, height, width, subframes, motion=None):
    """Frames of one sequence: a list of ``{'blur', 'blur_gamma', 'sharp'}`` uint8 RGB arrays."""
    renderer = SequenceRenderer(rng, height, width, num_frames * subframes, motion or MotionSettings())
    frames = []
    for i in range(num_frames):
        subs = [renderer.render(i * subframes + s) for s in range(subframes)]
        blur, blur_gamma = blur_from_subframes(subs)
        frames.append({'blur': to_integer_image(blur), 'blur_gamma': to_integer_image(blur_gamma),
                       'sharp': to_integer_image(subs[subframes // 2])})
    return frames


@dataclass
class SyntheticSettings:
    """Everything that decides a synthetic set; the defaults make the demo's set (tools/demo.py)."""

    splits: dict = field(default_factory=lambda: {'train': 12, 'test': 3})
    num_frames: int = 24
    height: int = 128
    width: int = 192
    subframes: int = 11
    seed: int = 0
    motion: MotionSettings = field(default_factory=MotionSettings)


SETTINGS_FILE = 'settings.json'


def settings_mismatch(root, expected=None):
    """What differs between the settings that made the set at ``root`` and ``expected`` ('' if nothing)."""
    expected = asdict(expected or SyntheticSettings())
    path = osp.join(root, SETTINGS_FILE)
    if not osp.isfile(path):
        return f'it has no {SETTINGS_FILE}: an older generator made it'
    with open(path) as f:
        found = json.load(f)
    differing = sorted(key for key in expected.keys() | found.keys() if expected.get(key) != found.get(key))
    return ', '.join(f'{key} {found.get(key)} instead of {expected.get(key)}' for key in differing)


def write_synthetic_gopro(root, splits=None, num_frames=12, height=128, width=192, subframes=11, seed=0,
                          motion=None, progress=True):
    """Write a GOPRO_Large-layout synthetic set and return its sequence folders.

    Args:
        root (str): Output folder; must not exist or be empty (nothing is overwritten).
        splits (dict[str, int]): Sequences per split. Default: ``{'train': 4, 'test': 2}``.
        num_frames (int): Frames per sequence.
        height, width (int): Frame size.
        subframes (int): Sharp sub-frames averaged into one blurry frame (GOPRO_Large: 7 to 13).
        seed (int): Seed of everything.
        motion (MotionSettings | None): Motion magnitudes.
        progress (bool): Show a progress bar.

    Returns:
        list[str]: The sequence folders written.
    """
    splits = splits or {'train': 4, 'test': 2}
    motion = motion or MotionSettings()
    if osp.exists(root) and (not osp.isdir(root) or os.listdir(root)):
        raise FileExistsError(f'{root} exists and is not an empty folder; choose a new folder.')
    rng = np.random.default_rng(seed)
    jobs = [(split, i) for split, count in splits.items() for i in range(count)]
    written = []
    with staged_outputs(folders=[root], overwrite=True, tool='tools/make_synthetic_gopro.py') as staging:
        for split, i in tqdm(jobs, desc='Synthetic sequences', unit='seq', disable=not progress):
            seq_name = osp.join(split, f'SYN{seed:03d}_{split}_{i:02d}')
            first = int(rng.integers(1, 50))  # GOPRO's frame numbers do not always start at 1
            for frame_idx, frame in enumerate(render_sequence(rng, num_frames, height, width, subframes, motion)):
                for kind, image in frame.items():
                    os.makedirs(osp.join(staging[root], seq_name, kind), exist_ok=True)
                    write_png(osp.join(staging[root], seq_name, kind, f'{first + frame_idx:06d}.png'),
                              np.ascontiguousarray(image[..., ::-1]))
            written.append(osp.join(root, seq_name))
        settings = SyntheticSettings(dict(splits), num_frames, height, width, subframes, seed, motion)
        with open(osp.join(staging[root], SETTINGS_FILE), 'w') as f:
            json.dump(asdict(settings), f, indent=2)
    return written
