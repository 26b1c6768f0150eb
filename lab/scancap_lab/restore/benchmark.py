"""Restoration benchmark: seeded synthetic degradations of clean test sets, every method.

Shared by `benchmarks/restoration.py` (full run, writes reports/restoration.md) and the
restoration notebook (fast mode on a subset), so both show the same numbers.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from scancap import quality, restore
from scancap.io import load_image

SETS = {"CBSD68": "color", "Kodak24": "color", "Set12": "gray"}


@dataclass(frozen=True)
class Degradation:
    """Gaussian blur of width `blur` followed by Gaussian noise of σ `noise` (0-255)."""

    noise: float = 0.0
    blur: float = 0.0

    @property
    def name(self) -> str:
        parts = ([f"blur{self.blur:g}"] if self.blur else []) + (
            [f"noise{self.noise:g}"] if self.noise else []
        )
        return "+".join(parts) or "clean"

    def apply(self, image: np.ndarray, seed: int) -> np.ndarray:
        return quality.degrade(image, self.noise, self.blur, seed=seed)


GRID = [
    Degradation(),
    Degradation(noise=5),
    Degradation(noise=15),
    Degradation(noise=25),
    Degradation(noise=50),
    Degradation(blur=1.0),
    Degradation(blur=2.0),
    Degradation(noise=5, blur=1.0),
    Degradation(noise=15, blur=1.0),
]

Filter = Callable[[np.ndarray, Degradation], np.ndarray]


@dataclass(frozen=True)
class Method:
    """One restoration method at one setting; `family` groups settings of one filter."""

    family: str
    setting: str
    run: Filter
    applies: Callable[[Degradation], bool] = lambda degradation: True


def notebook_pipeline(image: np.ndarray) -> np.ndarray:
    """The original notebook's fixed pipeline: 3×3 Laplacian (centre 9), then OpenCV NLM."""
    sharpened = restore.sharpen_laplacian(image, "box")
    if sharpened.ndim == 2:
        return cv2.fastNlMeansDenoising(sharpened, None, 10, 7, 15)
    return cv2.fastNlMeansDenoisingColored(sharpened, None, 10, 10, 7, 15)


def _noisy(degradation: Degradation) -> bool:
    return degradation.noise > 0


def _blurred(degradation: Degradation) -> bool:
    return degradation.blur > 0


FIXED_FAMILIES = ("gaussian", "median", "bilateral", "nlm-opencv", "laplacian", "unsharp")


def fixed_methods() -> list[Method]:
    """Each classic filter over a small grid of settings (best one reported per cell)."""
    methods = [Method("identity", "-", lambda im, d: im)]
    methods.append(
        Method("notebook", "laplacian9+nlm(10,10,7,15)", lambda im, d: notebook_pipeline(im))
    )
    methods += [
        Method("gaussian", f"σ={s}", lambda im, d, s=s: restore.denoise_gaussian(im, s), _noisy)
        for s in (0.5, 0.8, 1.2, 1.8)
    ]
    methods += [
        Method("median", f"{k}×{k}", lambda im, d, k=k: restore.denoise_median(im, k), _noisy)
        for k in (3, 5)
    ]
    methods += [
        Method(
            "bilateral", f"σc={c}", lambda im, d, c=c: restore.denoise_bilateral(im, c, 2.0), _noisy
        )
        for c in (20, 40, 70, 100)
    ]
    methods += [
        Method("nlm-opencv", f"h={h}", lambda im, d, h=h: restore.denoise_nlm(im, h), _noisy)
        for h in (5, 10, 15, 22, 30)
    ]
    methods += [
        Method("laplacian", k, lambda im, d, k=k: restore.sharpen_laplacian(im, k), _blurred)
        for k in restore.LAPLACIAN_KERNELS
    ]
    methods += [
        Method(
            "unsharp",
            f"r={r},a={a}",
            lambda im, d, r=r, a=a: restore.sharpen_unsharp(im, r, a),
            _blurred,
        )
        for r in (1.0, 2.0)
        for a in (0.5, 1.0, 2.0)
    ]
    return methods


def reference_methods(with_bm3d: bool) -> list[Method]:
    """Methods given the true σ (oracle references) and the slow BM3D reference."""
    methods = [
        Method(
            "dct-wiener (true σ)",
            "σ",
            lambda im, d: restore.denoise_dct(im, d.noise),
            _noisy,
        ),
        Method("nlm-skimage (σ̂)", "h=0.6σ̂", lambda im, d: _skimage_nlm(im), _noisy),
    ]
    if with_bm3d:
        methods.append(
            Method(
                "bm3d (true σ)",
                "σ",
                lambda im, d: restore.denoise_bm3d(im, d.noise),
                lambda d: d.noise in (15, 25, 50) and not d.blur,
            )
        )
    return methods


def auto_methods() -> list[Method]:
    return [
        Method("auto", "-", lambda im, d: restore.auto_restore(im)[0]),
        Method(
            "auto-fast",
            "-",
            lambda im, d: restore.auto_restore(im, restore.AutoPolicy(fast=True))[0],
        ),
    ]


def _skimage_nlm(image: np.ndarray) -> np.ndarray:
    """scikit-image NLM, fast mode, h = 0.6·σ̂: the reference quoted in the brief."""
    from skimage.restoration import denoise_nl_means

    sigma = quality.noise_sigma_wavelet(image) / 255.0
    channel_axis = -1 if image.ndim == 3 else None
    result = denoise_nl_means(
        image.astype(np.float32) / 255.0,
        h=0.6 * sigma,
        sigma=sigma,
        patch_size=5,
        patch_distance=6,
        fast_mode=True,
        channel_axis=channel_axis,
    )
    return np.clip(np.rint(result * 255.0), 0, 255).astype(np.uint8)


def load_set(data_dir: Path, name: str, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Clean images of a benchmark set; grey sets come back as 2-D arrays."""
    paths = sorted((data_dir / "restoration" / name).glob("*.png"))[:limit]
    images = [(path.stem, load_image(path)) for path in paths]
    if SETS[name] == "gray":
        images = [(stem, image[..., 0].copy()) for stem, image in images]
    return images


def image_seed(set_name: str, stem: str, degradation: Degradation) -> int:
    """A fixed seed per (set, image, degradation), stable across runs and machines."""
    return zlib.crc32(f"{set_name}/{stem}/{degradation.name}".encode())


def run_grid(
    sets: dict[str, list[tuple[str, np.ndarray]]],
    methods: Iterable[Method],
    grid: Iterable[Degradation] = GRID,
    method_limits: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """PSNR, SSIM and seconds for every (set, image, degradation, method) combination.

    `method_limits` caps the number of images per set for slow families (BM3D).
    """
    methods, grid, limits = list(methods), list(grid), method_limits or {}
    rows = []
    for set_name, images in sets.items():
        for degradation in grid:
            if progress:
                progress(f"{set_name} {degradation.name}")
            for index, (stem, clean) in enumerate(images):
                degraded = degradation.apply(clean, image_seed(set_name, stem, degradation))
                megapixels = clean.shape[0] * clean.shape[1] / 1e6
                for method in methods:
                    if not method.applies(degradation) or index >= limits.get(method.family, 10**9):
                        continue
                    start = time.perf_counter()
                    output = method.run(degraded, degradation)
                    seconds = time.perf_counter() - start
                    rows.append(
                        {
                            "set": set_name,
                            "image": stem,
                            "degradation": degradation.name,
                            "family": method.family,
                            "setting": method.setting,
                            "psnr": quality.psnr(clean, output),
                            "ssim": quality.ssim(clean, output),
                            "seconds": seconds,
                            "megapixels": megapixels,
                        }
                    )
    return pd.DataFrame(rows)


def best_settings(results: pd.DataFrame) -> pd.DataFrame:
    """Mean per (set, degradation, family, setting), keeping each family's best setting.

    For the fixed filters this is an oracle choice (best on the set itself): an upper
    bound on what any one fixed setting can do, which auto must approach without it.
    """
    means = (
        results.groupby(["set", "degradation", "family", "setting"], sort=False)
        .agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), images=("psnr", "size"))
        .reset_index()
    )
    best = means.loc[means.groupby(["set", "degradation", "family"], sort=False)["psnr"].idxmax()]
    return best.reset_index(drop=True)


def speed_table(results: pd.DataFrame) -> pd.DataFrame:
    """Median seconds per megapixel of each family (its slowest setting is not singled out)."""
    per_mp = results.assign(s_per_mp=results["seconds"] / results["megapixels"])
    return per_mp.groupby("family", sort=False)["s_per_mp"].median().rename("s/MP").to_frame()


def pivot(best: pd.DataFrame, set_name: str, metric: str) -> pd.DataFrame:
    """Degradations as rows, method families as columns, for one set and one metric."""
    table = best[best["set"] == set_name].pivot(
        index="degradation", columns="family", values=metric
    )
    order = [d.name for d in GRID if d.name in table.index]
    families = [f for f in best["family"].unique() if f in table.columns]
    return table.loc[order, families]


def strength_sweep(
    images: list[tuple[str, np.ndarray]],
    degradations: Iterable[Degradation],
    apply: Callable[[np.ndarray, float], np.ndarray],
    strengths: Iterable[float],
    parameter: str = "strength",
) -> pd.DataFrame:
    """Mean PSNR/SSIM of one filter over a range of strengths, per degradation.

    This is how a fixed setting is judged: one curve per degradation shows where the
    filter starts to erase detail (denoising) or to bring noise back (sharpening).
    """
    rows = []
    for degradation in degradations:
        pairs = [
            (clean, degradation.apply(clean, image_seed("sweep", stem, degradation)))
            for stem, clean in images
        ]
        for strength in strengths:
            outputs = [(clean, apply(degraded, strength)) for clean, degraded in pairs]
            rows.append(
                {
                    "degradation": degradation.name,
                    parameter: strength,
                    "psnr": float(np.mean([quality.psnr(c, o) for c, o in outputs])),
                    "ssim": float(np.mean([quality.ssim(c, o) for c, o in outputs])),
                }
            )
    return pd.DataFrame(rows)


def degraded_copies(
    images: list[tuple[str, np.ndarray]], grid: Iterable[Degradation], tag: str
) -> Iterator[tuple[Degradation, str, np.ndarray, np.ndarray]]:
    """(degradation, image name, clean, degraded) for every pair, seeded by `tag`."""
    for degradation in grid:
        for stem, clean in images:
            yield (
                degradation,
                stem,
                clean,
                degradation.apply(clean, image_seed(tag, stem, degradation)),
            )


def estimator_table(
    images: list[tuple[str, np.ndarray]], grid: Iterable[Degradation] = GRID
) -> pd.DataFrame:
    """Measured noise σ̂ and edge blur against the true degradation, averaged over images."""
    rows = [
        {
            "degradation": degradation.name,
            "true σ": degradation.noise,
            "true blur": degradation.blur,
            "σ̂ (PCA)": quality.noise_sigma_pca(degraded),
            "σ̂ (wavelet)": quality.noise_sigma_wavelet(degraded),
            "σ̂ (scancap)": quality.estimate_noise(degraded),
            "edge blur (px)": quality.edge_blur_sigma(degraded),
            "blur effect": quality.blur_score(degraded),
            "Laplacian variance": quality.laplacian_variance(degraded),
        }
        for degradation, _, _, degraded in degraded_copies(images, grid, "estimator")
    ]
    return pd.DataFrame(rows).groupby("degradation", sort=False).mean().round(2)


def decisions_table(
    images: list[tuple[str, np.ndarray]], grid: Iterable[Degradation] = GRID
) -> pd.DataFrame:
    """What auto measured and decided for each degraded image, with the PSNR it reached."""
    rows = []
    for degradation, stem, clean, degraded in degraded_copies(images, grid, "decisions"):
        restored, record = restore.auto_restore(degraded)
        row = record.flat()
        rows.append(
            {
                "image": stem,
                "degradation": degradation.name,
                "σ̂": row["before_noise_sigma"],
                "edge blur": row["before_edge_blur"],
                "denoiser": row["denoiser"],
                "denoise σ": row["denoise_sigma"],
                "sharpener": row["sharpener"],
                "deblur σ": row["sharpen_sigma"],
                "PSNR in": quality.psnr(clean, degraded),
                "PSNR out": quality.psnr(clean, restored),
            }
        )
    return pd.DataFrame(rows).round(2)
