"""Comparison pictures a person can judge: labelled panels, a zoomed crop, an edge-sharpness figure.

Used by the test harness (one blurry | restored | sharp picture per sequence) and by
``tools/compare.py`` (blurry | model A | model B | ... | sharp). Each panel's label gives its
PSNR against the sharp frame (the released evaluation's, truncated to uint8) and its edge
sharpness; below the row, the same crop of the region that moves most, enlarged, where a
difference between a blurry and a restored frame is visible even on small frames.
"""
import cv2
import numpy as np

from memdeblur.metrics.released_metric import calculate_psnr_released


def edge_sharpness(image):
    """Variance of the Laplacian of the grey image (uint8 BGR or grey): higher means sharper edges.

    A blur-only figure needing no ground truth, so blurry, restored and sharp frames can be put
    side by side; it grows with ringing and noise too, so read it next to PSNR, not alone.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def label_scale(text, width):
    """The font scale at which ``text`` fits ``width`` pixels with a margin (larger on wide images, smaller on narrow
    ones, never unreadably small)."""
    scale = max(0.4, width / 500)
    (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return max(0.25, min(scale, scale * (width - 10) / max(text_w, 1)))


def labelled(image, text, scale=None):
    """The image under a dark banner holding its label (the banner adds an even number of rows, so even frame sizes
    stay even; no pixel is covered); uint8 or uint16 images. The label is scaled to fit the image's width unless
    ``scale`` is given."""
    scale = scale or label_scale(text, image.shape[1])
    (_, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    banner = np.zeros((text_h + 10 + (text_h % 2), image.shape[1], 3), image.dtype)
    white = (int(np.iinfo(image.dtype).max), ) * 3
    cv2.putText(banner, text, (5, text_h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)
    return np.concatenate([banner, image], axis=0)


def labelled_row(images, texts):
    """``images`` (of one height) labelled with ``texts`` at one font scale, the largest at which every label fits,
    side by side."""
    scale = min(label_scale(text, image.shape[1]) for image, text in zip(images, texts))
    return np.concatenate([labelled(image, text, scale) for image, text in zip(images, texts)], axis=1)


def most_moving_region(blurry, sharp, fraction):
    """(top, left, height, width) of the 1/``fraction``-sized crop where blurry and sharp differ most."""
    h, w = blurry.shape[:2]
    crop_h, crop_w = min(h, max(8, h // fraction)), min(w, max(8, w // fraction))
    difference = np.abs(blurry.astype(np.float32) - sharp.astype(np.float32)).mean(axis=2)
    local = cv2.boxFilter(difference, -1, (crop_w, crop_h), normalize=True, borderType=cv2.BORDER_CONSTANT)
    y, x = np.unravel_index(np.argmax(local), local.shape)
    top, left = int(np.clip(y - crop_h // 2, 0, h - crop_h)), int(np.clip(x - crop_w // 2, 0, w - crop_w))
    return top, left, crop_h, crop_w


def panel_label(name, image, sharp):
    """'<name>  <PSNR> dB  sharpness <S>' (no PSNR for the sharp frame itself)."""
    psnr = '' if image is sharp else f'  {calculate_psnr_released(image, sharp):.2f} dB'
    return f'{name}{psnr}  sharpness {edge_sharpness(image):.0f}'


def comparison_image(blurry, outputs, sharp, crop_fraction=3):
    """Labelled panels in a row and the same zoomed crop of each below them (BGR uint8 arrays).

    Args:
        blurry, sharp (ndarray): The input frame and its ground truth.
        outputs (list[tuple[str, ndarray]]): (label, restored frame) for each model.
        crop_fraction (int): The crop is 1/crop_fraction of the frame's height and width.
    """
    panels = [('blurry', blurry)] + list(outputs) + [('sharp', sharp)]
    top, left, crop_h, crop_w = most_moving_region(blurry, sharp, crop_fraction)
    row, zoomed = [], []
    for name, image in panels:
        framed = image.copy()
        cv2.rectangle(framed, (left, top), (left + crop_w - 1, top + crop_h - 1), (0, 255, 255), 1)
        row.append(framed)
        crop = image[top:top + crop_h, left:left + crop_w]
        zoomed.append(cv2.resize(crop, (image.shape[1], image.shape[1] * crop_h // crop_w),
                                 interpolation=cv2.INTER_NEAREST))
    return np.concatenate([labelled_row(row, [panel_label(name, image, sharp) for name, image in panels]),
                           labelled_row(zoomed, [f'{name}, zoomed' for name, _ in panels])], axis=0)
