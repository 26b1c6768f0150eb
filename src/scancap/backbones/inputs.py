"""What both backbones share at their input: a uint8 RGB image becomes a 224x224 float batch."""

from __future__ import annotations

import cv2
import keras
import numpy as np


def to_model_input(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize an (H, W, 3) uint8 RGB image to (size, size, 3) float32 in [0, 1].

    INTER_AREA averages pixels when shrinking, so large scans do not alias.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    shrinking = min(image.shape[:2]) >= size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    return resized.astype(np.float32) / 255.0


def averaged_to_model_scale(image: np.ndarray, size: int = 224) -> np.ndarray:
    """An (H, W[, C]) image as float32 (its own range) with each side longer than `size` shrunk
    to `size` by pixel averaging, as `to_model_input` shrinks a large photo; shorter sides stay.

    What is left of a photo's grain at the backbones' input: averaging removes it, whereas
    enlarging only spreads it (a CNN still sees it) while smoothing what estimators read.
    """
    height, width = image.shape[:2]
    if height <= size and width <= size:
        return np.asarray(image, np.float32)
    shape = (min(width, size), min(height, size))
    # A channel at a time: a float copy of a whole 50-megapixel scan would take 600 MB.
    planes = [
        cv2.resize(plane.astype(np.float32), shape, interpolation=cv2.INTER_AREA)
        for plane in np.moveaxis(np.atleast_3d(image), -1, 0)
    ]
    return np.stack(planes, axis=-1) if image.ndim == 3 else planes[0]


def imagenet_top_k(model: keras.Model, image: np.ndarray, k: int = 5) -> list[int]:
    """Indices of the k highest ImageNet logits for one uint8 RGB image, best first."""
    batch = to_model_input(image, size=model.input_shape[1])[None]
    logits = keras.ops.convert_to_numpy(model(batch, training=False))[0]
    return [int(i) for i in np.argsort(-logits)[:k]]
