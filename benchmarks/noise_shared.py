"""Grain that the three colour channels share: what scancap's noise estimate sees of it.

    .venv/bin/python benchmarks/noise_shared.py

Every restoration benchmark adds noise independently per channel, in memory. Real scans are
stored as JPEG, whose chroma subsampling and quantisation remove most of the colour part of the
noise and keep the grey part, which the channels share (film grain is mostly grey too).
`estimate_noise` reads the smallest eigenvalues of 7 x 7 x 3 patches, where grain shared by the
channels leaves only chroma content, so it may not see such grain at all. This measures it on
the restoration benchmarks' colour photos (Kodak24, CBSD68) with σ = 15 noise, per channel,
shared by the channels, and per channel then saved as JPEG quality 90 (4:2:0): the median σ̂,
the share that `auto-fast` (the pipeline's default) denoises (σ̂ at or above its noise floor),
and PSNR against the clean photo before and after `auto-fast`: with the estimate as it was
until 2026-11-30 (per channel only: `shared=False`), which documented the limit, and as shipped
(which adds a weak-texture estimate of the luma). Nothing is chosen here
(`reports/noise_shared.md`; rule 2 of the change in `reports/restoration_experiments.md`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from unittest import mock

import numpy as np
import pandas as pd

from scancap import quality
from scancap.io import load_image
from scancap.paths import data_dir
from scancap.quality import PSNR_CAP_DB, degrade, estimate_noise, psnr
from scancap.restore import restore_image
from scancap.restore.auto import AutoPolicy
from scancap_lab.markdown import markdown, write_markdown
from scancap_lab.paths import REPO_ROOT

REPORT = REPO_ROOT / "reports" / "noise_shared.md"
SIGMA = 15.0
JPEG_QUALITY = 90


CONDITIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "clean": lambda image, seed: image,
    f"σ = {SIGMA:g} per channel": lambda image, seed: degrade(image, SIGMA, seed=seed),
    f"σ = {SIGMA:g} shared by the channels": lambda image, seed: degrade(
        image, SIGMA, seed=seed, shared=True
    ),
    f"σ = {SIGMA:g} per channel, then JPEG {JPEG_QUALITY}": lambda image, seed: degrade(
        image, SIGMA, seed=seed, jpeg_quality=JPEG_QUALITY
    ),
}


def restored(image: np.ndarray, mode: str, shared: bool) -> np.ndarray:
    """`mode`'s output with the estimate as it was (shared=False) or as shipped."""
    with mock.patch.object(quality, "estimate_noise", partial(estimate_noise, shared=shared)):
        return restore_image(image, mode)[0]


def measure(photos: list[np.ndarray], shared: bool) -> pd.DataFrame:
    """One row per condition: σ̂, the share auto-fast denoises, PSNR before and after it, with
    the estimate as shipped or (`shared=False`) per channel only."""
    floor = AutoPolicy().noise_floor
    rows = []
    for condition, make in CONDITIONS.items():
        inputs = [make(photo, seed) for seed, photo in enumerate(photos)]
        sigma = np.array([estimate_noise(image, shared=shared) for image in inputs])
        outputs = [restored(image, "auto-fast", shared) for image in inputs]
        before = [psnr(clean, image) for clean, image in zip(photos, inputs, strict=True)]
        after = [psnr(clean, image) for clean, image in zip(photos, outputs, strict=True)]
        rows.append({
            "photos": condition,
            "median σ̂": f"{np.median(sigma):.2f}",
            f"denoised (σ̂ ≥ {floor:g})": f"{(sigma >= floor).mean():.2f}",
            "PSNR as is (dB)": mean_psnr(before),
            "PSNR after auto-fast (dB)": mean_psnr(after),
            "gain (dB)": f"{np.mean(after) - np.mean(before):+.2f}" if condition != "clean" else "",
        })  # fmt: skip
    return pd.DataFrame(rows)


def mean_psnr(values: list[float]) -> str:
    """The mean PSNR, or how many images are identical to the clean photo (PSNR is capped)."""
    identical = sum(value >= PSNR_CAP_DB for value in values)
    return f"{np.mean(values):.2f}" if not identical else f"{identical} identical"


def colour_photos() -> list[np.ndarray]:
    """The restoration benchmarks' colour photos (Kodak24, then CBSD68)."""
    folders = [data_dir() / "restoration" / name for name in ("Kodak24", "CBSD68")]
    return [load_image(path) for folder in folders for path in sorted(folder.glob("*.png"))]


def main() -> None:
    photos = colour_photos()
    intro = (
        f"{len(photos)} colour photos (Kodak24 and CBSD68), noise seeded per photo; σ̂ is"
        " `estimate_noise` (as `auto` measures), the denoised share counts σ̂ at or above"
        " `auto-fast`'s noise floor, PSNR is against the clean photo, averaged over the photos."
    )
    sections = [
        ("Per channel only (the estimate until 2026-11-30)", markdown(measure(photos, False))),
        ("As shipped (the larger of that and the luma's weak texture)",
         markdown(measure(photos, True))),
    ]  # fmt: skip
    write_markdown(REPORT, "Grain shared by the colour channels", intro, sections)


if __name__ == "__main__":
    main()
