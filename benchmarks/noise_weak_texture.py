"""A candidate noise estimate that sees grain the colour channels share (selection data only).

    .venv/bin/python benchmarks/noise_weak_texture.py

`reports/noise_shared.md` shows that `estimate_noise` misses noise the three channels share,
which is what a JPEG keeps of a scan's noise. The candidate: the larger of `estimate_noise` and
a weak-texture estimate of the luma (Liu, Tanaka and Okutomi 2013, "Single-image noise level
estimation for blind denoising"): among 7 x 7 patches, keep those whose gradient energy a noise
of the current σ would explain (a gamma quantile), take σ² as the smallest eigenvalue of their
covariance, and repeat. Flat patches carry the noise without the texture, so clean photos
should stay low. Measured on the same photos and conditions as `noise_shared.py`, and on the
first Flickr8k train photos as they are (the captioner's grain level is the largest σ̂ there).
Nothing in the product changes; writes `reports/noise_weak_texture.md`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from grounding_backbones import markdown, write_markdown
from noise_shared import CONDITIONS, colour_photos
from scipy.special import gammaincinv

from scancap.caption.data import FLICKR, load_split
from scancap.io import load_image
from scancap.paths import REPO_ROOT, data_dir
from scancap.quality import _patch_matrix, estimate_noise, to_gray

REPORT = REPO_ROOT / "reports" / "noise_weak_texture.md"
PATCH = 7
PATCHES = 10_000
QUANTILE = 0.99  # share of pure-noise patches whose gradient energy stays under the threshold
FLICKR_PHOTOS = 300


def derivative_operators(size: int = PATCH) -> np.ndarray:
    """Horizontal and vertical forward differences on a flattened size x size patch, stacked."""
    index = np.arange(size * size).reshape(size, size)
    rows = []
    for first, second in ((index[:, :-1], index[:, 1:]), (index[:-1, :], index[1:, :])):
        for a, b in zip(first.ravel(), second.ravel(), strict=True):
            row = np.zeros(size * size)
            row[a], row[b] = -1.0, 1.0
            rows.append(row)
    return np.array(rows)


DERIVATIVES = derivative_operators()


def smallest_eigenvalue(patches: np.ndarray) -> float:
    return max(float(np.linalg.eigvalsh(np.cov(patches, rowvar=False))[0]), 0.0)


def weak_texture_sigma(plane: np.ndarray, iterations: int = 5) -> float:
    """Noise σ of a 2-D plane (its own scale) from its weakly textured patches."""
    patches = _patch_matrix(np.asarray(plane, np.float32), PATCH, PATCHES, 0).astype(np.float64)
    energy = ((patches @ DERIVATIVES.T) ** 2).sum(axis=1)
    pixels = PATCH * PATCH
    # For pure noise of variance v, energy / v follows a gamma law (shape pixels/2,
    # scale 2 tr(DᵀD) / pixels): its QUANTILE is the texture threshold.
    scale = 2.0 * np.trace(DERIVATIVES.T @ DERIVATIVES) / pixels
    variance = smallest_eigenvalue(patches)
    for _ in range(iterations):
        flat = energy < variance * gammaincinv(pixels / 2, QUANTILE) * scale
        if flat.sum() < 2 * pixels:
            break
        variance = smallest_eigenvalue(patches[flat])
    return float(np.sqrt(variance))


def candidate(image: np.ndarray) -> float:
    """The larger of scancap's estimate and the weak-texture estimate of the luma."""
    luma = to_gray(image) if image.ndim == 3 else image
    return max(estimate_noise(image), weak_texture_sigma(luma))


def summary(name: str, shipped: np.ndarray, proposed: np.ndarray) -> dict[str, str]:
    def spread(values: np.ndarray) -> str:
        low, mid, high = np.percentile(values, [10, 50, 90])
        return f"{mid:.2f} [{low:.2f}, {high:.2f}], max {values.max():.2f}"

    return {"photos": name, "estimate_noise": spread(shipped), "candidate": spread(proposed)}


def main() -> None:
    photos = colour_photos()
    rows = []
    for condition, make in CONDITIONS.items():
        inputs = [make(photo, seed) for seed, photo in enumerate(photos)]
        shipped = np.array([estimate_noise(image) for image in inputs])
        rows.append(summary(condition, shipped, np.array([candidate(i) for i in inputs])))
    names = load_split("train", data_dir())[:FLICKR_PHOTOS]
    flickr = [load_image(data_dir() / FLICKR / "images" / name) for name in names]
    rows.append(summary(
        f"first {FLICKR_PHOTOS} Flickr8k train photos, as they are",
        np.array([estimate_noise(image) for image in flickr]),
        np.array([candidate(image) for image in flickr]),
    ))  # fmt: skip
    intro = (
        f"σ̂ (0-255): median [10th, 90th percentile], max. {len(photos)} colour photos (Kodak24,"
        " CBSD68) under `noise_shared.py`'s conditions, and Flickr8k train photos as they are."
        f" Candidate: {PATCH} x {PATCH} patches, {PATCHES} per image, gamma quantile {QUANTILE}."
    )
    write_markdown(REPORT, "A noise estimate that sees shared grain (candidate)", intro,
                   [(None, markdown(pd.DataFrame(rows)))])  # fmt: skip


if __name__ == "__main__":
    main()
