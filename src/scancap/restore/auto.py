"""The auto policy and the named restoration modes: measure noise and blur, then decide.

`auto` denoises at the measured noise level, then deconvolves the blur beyond that of a sharp
photograph; `auto-fast` does the same with a bilateral filter and cheap measurements. The
fixed modes apply one filter, with a strength set from the measured noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from scancap import quality
from scancap.restore.filters import (
    denoise_bilateral,
    denoise_dct,
    denoise_gaussian,
    denoise_median,
    denoise_nlm,
    sharpen_deconvolve,
    sharpen_laplacian,
    sharpen_noise_aware,
    sharpen_unsharp,
)


@dataclass(frozen=True)
class AutoPolicy:
    """Thresholds and gains of the auto mode (tuned on a tuning set, never on benchmarks)."""

    noise_floor: float = 2.5  # σ̂ below this is sensor grain or JPEG: leave it
    denoise_gain: float = 1.0  # σ given to the denoiser = gain × σ̂
    natural_blur: float = 0.75  # edge width (px) of a sharp photograph
    min_excess_blur: float = 0.58  # i.e. act from an edge width of 0.95 px
    max_excess_blur: float = 3.0
    min_deblur: float = 1.0  # a blurred, noise-free image is deblurred by at least this
    base_nsr: float = 0.02  # deconvolution regularisation for a clean image
    noise_nsr: float = 0.25  # extra regularisation per unit of (σ̂ / 25)²
    fast: bool = False  # fast path: bilateral denoiser, cheap measurements only


@dataclass
class Measurements:
    """No-reference quality of one image."""

    noise_sigma: float
    edge_blur: float
    blur_effect: float
    laplacian_variance: float


@dataclass
class RestoreRecord:
    """What auto measured and decided, for the CSV and the manifest."""

    before: Measurements
    after: Measurements
    denoiser: str = "none"
    denoise_sigma: float = 0.0
    sharpener: str = "none"
    sharpen_sigma: float = 0.0
    sharpen_nsr: float = 0.0
    order: str = "denoise>sharpen"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether a filter was applied (otherwise the output is the input, unchanged)."""
        return self.denoiser != "none" or self.sharpener != "none"

    def flat(self) -> dict[str, object]:
        """One flat dict (before_*/after_* prefixes) for tables."""
        row = {f"before_{k}": v for k, v in asdict(self.before).items()}
        row |= {f"after_{k}": v for k, v in asdict(self.after).items()}
        row |= {k: v for k, v in asdict(self).items() if k not in ("before", "after", "notes")}
        row["notes"] = "; ".join(self.notes)
        return row


def measure(image: np.ndarray) -> Measurements:
    """All no-reference measures of an image."""
    return Measurements(
        noise_sigma=quality.estimate_noise(image),
        edge_blur=quality.edge_blur_sigma(image),
        blur_effect=quality.blur_score(image),
        laplacian_variance=quality.laplacian_variance(image),
    )


UNMEASURED = Measurements(*[float("nan")] * 4)


def measure_fast(image: np.ndarray) -> Measurements:
    """Only what the policy needs (noise and edge blur); the rest is NaN."""
    nan = float("nan")
    return Measurements(
        quality.estimate_noise(image, fast=True), quality.edge_blur_sigma(image), nan, nan
    )


def auto_restore(
    image: np.ndarray, policy: AutoPolicy = AutoPolicy()
) -> tuple[np.ndarray, RestoreRecord]:
    """Measure, then denoise first (sharpening first would amplify noise), then sharpen.

    The denoiser strength follows the estimated σ; the deconvolution width follows
    the blur measured on the denoised image beyond that of a sharp photograph, and
    its regularisation grows with the noise that was there, since denoising leaves
    some. Below each threshold the step is skipped, so clean sharp images pass through.
    """
    start = time.perf_counter()
    before = measure_fast(image) if policy.fast else measure(image)
    record = RestoreRecord(before=before, after=before)
    result = _denoise_step(np.asarray(image, dtype=np.uint8), record, policy)
    result = _sharpen_step(result, record, policy)
    # The fast path does not re-measure its output: that would cost as much as restoring.
    record.after = UNMEASURED if policy.fast else measure(result)
    record.seconds = time.perf_counter() - start
    return result, record


def _denoise_step(image: np.ndarray, record: RestoreRecord, policy: AutoPolicy) -> np.ndarray:
    """Denoise at the measured σ̂ when it is above the floor; record the decision."""
    sigma = record.before.noise_sigma
    if sigma < policy.noise_floor:
        record.notes.append(f"noise σ̂={sigma:.1f} below floor: not denoised")
        return image
    record.denoise_sigma = policy.denoise_gain * sigma
    if policy.fast:
        record.denoiser = "bilateral"
        return cv2.bilateralFilter(image, 9, 3.0 * record.denoise_sigma, 2.0)
    record.denoiser = "dct-wiener"
    return denoise_dct(image, record.denoise_sigma)


def _sharpen_step(image: np.ndarray, record: RestoreRecord, policy: AutoPolicy) -> np.ndarray:
    """Deblur the width beyond that of a sharp photo, regularised by the noise there was."""
    denoised = record.denoiser != "none"
    # The fast path skips re-measuring: noise narrows measured edges, so it errs on
    # the side of not sharpening.
    remeasure = denoised and not policy.fast
    edge_blur = quality.edge_blur_sigma(image) if remeasure else record.before.edge_blur
    excess = _excess_blur(edge_blur, policy)
    if not np.isfinite(edge_blur):
        record.notes.append("no edges to measure: not sharpened")
        return image
    if excess < policy.min_excess_blur:
        record.notes.append(f"edge blur {edge_blur:.2f}px: not sharpened")
        return image
    record.sharpener = "deconvolve"
    # Near the threshold the edge measure under-reads a real blur; after denoising it
    # over-reads (denoising widens edges), so the floor applies to noise-free images.
    record.sharpen_sigma = excess if denoised else max(excess, policy.min_deblur)
    noise = record.before.noise_sigma
    record.sharpen_nsr = policy.base_nsr + policy.noise_nsr * (noise / 25.0) ** 2
    return sharpen_deconvolve(image, record.sharpen_sigma, record.sharpen_nsr, noise_sigma=noise)


def _excess_blur(edge_blur: float, policy: AutoPolicy) -> float:
    """Blur width beyond that of a sharp photograph (0 when unmeasurable)."""
    if not np.isfinite(edge_blur) or edge_blur <= policy.natural_blur:
        return 0.0
    excess = float(np.sqrt(edge_blur**2 - policy.natural_blur**2))
    return min(excess, policy.max_excess_blur)


# --------------------------------------------------------------------------- modes


RestoreMode = Callable[[np.ndarray, float], tuple[np.ndarray, RestoreRecord]]


def _fixed(name: str, apply: Callable[[np.ndarray, float], np.ndarray], kind: str) -> RestoreMode:
    """Wrap a single filter, parametrised by strength × the measured noise σ̂, as a mode."""

    def mode(image: np.ndarray, strength: float) -> tuple[np.ndarray, RestoreRecord]:
        start = time.perf_counter()
        before = measure(image)
        result = apply(image, strength * max(before.noise_sigma, 1.0))
        record = RestoreRecord(before=before, after=measure(result))
        setattr(record, kind, name)
        record.seconds = time.perf_counter() - start
        return result, record

    return mode


def _identity(image: np.ndarray, strength: float) -> tuple[np.ndarray, RestoreRecord]:
    before = measure(image)
    return np.asarray(image, dtype=np.uint8), RestoreRecord(before=before, after=before)


MODES: dict[str, RestoreMode] = {
    "auto": lambda image, k: auto_restore(image, AutoPolicy(denoise_gain=k)),
    "auto-fast": lambda image, k: auto_restore(image, AutoPolicy(denoise_gain=k, fast=True)),
    "none": _identity,
    "denoise-dct": _fixed("dct-wiener", lambda im, s: denoise_dct(im, s), "denoiser"),
    "denoise-nlm": _fixed("nlm", lambda im, s: denoise_nlm(im, h=1.1 * s), "denoiser"),
    "denoise-gaussian": _fixed(
        "gaussian", lambda im, s: denoise_gaussian(im, 0.5 + s / 20), "denoiser"
    ),
    "denoise-median": _fixed("median", lambda im, s: denoise_median(im, 3), "denoiser"),
    "denoise-bilateral": _fixed(
        "bilateral", lambda im, s: denoise_bilateral(im, 2.0 * s, 2.0), "denoiser"
    ),
    "sharpen-laplacian": _fixed("laplacian", lambda im, s: sharpen_laplacian(im), "sharpener"),
    "sharpen-unsharp": _fixed("unsharp", lambda im, s: sharpen_unsharp(im), "sharpener"),
    "sharpen-noise-aware": _fixed(
        "noise-aware", lambda im, s: sharpen_noise_aware(im, noise_sigma=s), "sharpener"
    ),
}


def restore_image(
    image: np.ndarray, mode: str = "auto", strength: float = 1.0
) -> tuple[np.ndarray, RestoreRecord]:
    """Restore with a named mode (see MODES); 'auto' measures and decides.

    `strength` scales the denoising σ (1 = as measured): below 1 keeps more grain and detail,
    above 1 smooths more.
    """
    if mode not in MODES:
        raise ValueError(f"unknown restore mode {mode!r}; choose from {', '.join(MODES)}")
    if not 0 < strength <= 4:
        raise ValueError(f"restore strength must be in (0, 4], got {strength}")
    return MODES[mode](image, strength)


def restore_and_measure(
    image: np.ndarray, mode: str = "auto", strength: float = 1.0
) -> tuple[np.ndarray, RestoreRecord]:
    """`restore_image`, with the output's noise and blur always measured (for the manifest).

    The fast path skips that measurement to stay fast; here it costs one cheap measure when
    the image changed, and nothing when it passed through unchanged.
    """
    restored, record = restore_image(image, mode, strength)
    if np.isnan(record.after.noise_sigma):
        record.after = measure_fast(restored) if record.changed else record.before
    return restored, record
