"""Restoration: denoising and sharpening with convolutional filters, and the auto policy.

Every filter takes a uint8 RGB or grey image (0-255) and returns uint8 of the same
shape. Internally work is done in float32 on the 0-255 scale.

The main denoiser is a sliding-window DCT filter (Yu and Sapiro, IPOL 2011) with a
second, empirical Wiener pass as in BM3D: each 8×8 patch is projected on the DCT
basis, which is a bank of 64 separable convolution kernels; small coefficients are
noise and are dropped, and the overlapping estimates are averaged. Sharpening inverts
a Gaussian blur with a regularised (Wiener) deconvolution kernel, itself a small
convolution, gated by a local-contrast mask so that flat regions keep their noise
level. The auto policy measures noise and blur, then chooses order and strengths.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from scancap import quality

# Orthonormal colour transform (luminance + two opponent channels): it decorrelates
# RGB while keeping white noise white with the same σ in every channel.
OPPONENT = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
        [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)],
    ],
    dtype=np.float32,
)

LAPLACIAN_KERNELS = {
    "cross": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32),
    "box": np.array([[-1, -1, -1], [-1, 9, -1], [-1, -1, -1]], dtype=np.float32),
}


# --------------------------------------------------------------------------- helpers


def _as_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _per_plane(image: np.ndarray, plane_filter: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a 2-D float filter to each opponent-colour plane (or to a grey image)."""
    image = _as_float(image)
    if image.ndim == 2:
        return plane_filter(image)
    planes = image @ OPPONENT.T
    filtered = np.stack(
        [plane_filter(np.ascontiguousarray(planes[..., c])) for c in range(3)], axis=-1
    )
    return filtered @ OPPONENT


# ------------------------------------------------------------------- classic denoisers


def denoise_gaussian(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian low-pass: the simplest convolutional denoiser, blurs edges as much as noise."""
    return _to_uint8(cv2.GaussianBlur(_as_float(image), (0, 0), sigma))


def denoise_median(image: np.ndarray, size: int = 3) -> np.ndarray:
    """Median filter: removes impulse noise, keeps step edges."""
    return cv2.medianBlur(np.ascontiguousarray(image, dtype=np.uint8), size)


def denoise_bilateral(
    image: np.ndarray, sigma_color: float = 30.0, sigma_space: float = 2.0
) -> np.ndarray:
    """Bilateral filter: averages only neighbours of similar intensity (edge preserving)."""
    diameter = int(2 * np.ceil(2 * sigma_space) + 1)
    return _to_uint8(cv2.bilateralFilter(_as_float(image), diameter, sigma_color, sigma_space))


def denoise_nlm(image: np.ndarray, h: float = 10.0) -> np.ndarray:
    """OpenCV non-local means (the colour variant works in CIELAB)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, h, 7, 21)
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)


def denoise_bm3d(image: np.ndarray, sigma: float) -> np.ndarray:
    """(C)BM3D from the `bm3d` package: the quality reference, far too slow for production."""
    import bm3d  # optional dependency (the `bench` extra)

    scaled = _as_float(image) / 255.0
    if scaled.ndim == 2:
        result = bm3d.bm3d(scaled, sigma_psd=sigma / 255.0)
    else:
        result = bm3d.bm3d_rgb(scaled, sigma_psd=sigma / 255.0)
    return _to_uint8(np.asarray(result) * 255.0)


# --------------------------------------------------------------------- DCT denoiser


def dct_matrix(size: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix: row k is the k-th 1-D cosine basis vector."""
    k = np.arange(size)[:, None]
    i = np.arange(size)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


def _patches(plane: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, tuple[int, int]]:
    """All size×size patches on a stride grid, flattened to rows, and the grid shape."""
    windows = np.lib.stride_tricks.sliding_window_view(plane, (size, size))[::stride, ::stride]
    return windows.reshape(-1, size * size), windows.shape[:2]


def _overlap_add(
    patches: np.ndarray,
    weights: np.ndarray,
    grid: tuple[int, int],
    shape: tuple[int, int],
    stride: int,
) -> np.ndarray:
    """Weighted average of overlapping patch estimates back into an image."""
    size = int(np.sqrt(patches.shape[1]))
    weighted = (patches * weights[:, None]).reshape(grid[0], grid[1], size, size)
    weight_grid = weights.reshape(grid)
    total = np.zeros(shape, np.float32)
    norm = np.zeros(shape, np.float32)
    rows, cols = stride * grid[0], stride * grid[1]
    for i in range(size):
        for j in range(size):
            total[i : i + rows : stride, j : j + cols : stride] += weighted[:, :, i, j]
            norm[i : i + rows : stride, j : j + cols : stride] += weight_grid
    return total / np.maximum(norm, 1e-8)


def _dct_plane(
    plane: np.ndarray, sigma: float, stride: int, wiener: bool, threshold: float, size: int = 8
) -> np.ndarray:
    """DCT shrinkage of one float plane; see `denoise_dct`."""
    pad = size - 1
    padded = np.pad(plane, pad, mode="symmetric")
    extra = [(-(n - size)) % stride for n in padded.shape]
    padded = np.pad(padded, ((0, extra[0]), (0, extra[1])), mode="symmetric")
    basis = np.kron(dct_matrix(size), dct_matrix(size))
    rows, grid = _patches(padded, size, stride)
    coefficients = rows @ basis.T
    keep = np.abs(coefficients) >= threshold * sigma
    keep[:, 0] = True
    # Patches with fewer surviving coefficients are smoother, hence more trusted.
    estimate = _overlap_add(
        (coefficients * keep) @ basis, 1.0 / keep.sum(axis=1), grid, padded.shape, stride
    )
    if wiener:
        pilot = _patches(estimate, size, stride)[0] @ basis.T
        gain = pilot**2 / (pilot**2 + sigma**2)
        gain[:, 0] = 1.0
        estimate = _overlap_add(
            (coefficients * gain) @ basis, 1.0 / np.sum(gain**2, axis=1), grid, padded.shape, stride
        )
    return estimate[pad : pad + plane.shape[0], pad : pad + plane.shape[1]]


def denoise_dct(
    image: np.ndarray,
    sigma: float,
    stride: int = 3,
    wiener: bool = True,
    threshold: float = 2.7,
    rows_per_strip: int = 256,
) -> np.ndarray:
    """Sliding 8×8 DCT hard thresholding at `threshold`·σ, then an empirical Wiener pass.

    `stride` > 1 computes one patch every `stride` pixels: each pixel is still covered
    by several patches and the cost falls by stride². The image is processed in
    overlapping strips so memory stays bounded on large scans.
    """

    # Strips start on the patch grid, and their margin covers the two passes' reach
    # (2 × 7 px), so strips give the whole-image result (up to float rounding).
    rows = -(-rows_per_strip // stride) * stride
    margin = -(-16 // stride) * stride

    def plane_filter(plane: np.ndarray) -> np.ndarray:
        return _in_strips(
            plane, lambda strip: _dct_plane(strip, sigma, stride, wiener, threshold), rows, margin
        )

    return _to_uint8(_per_plane(image, plane_filter))


def _in_strips(
    plane: np.ndarray, plane_filter: Callable[[np.ndarray], np.ndarray], rows: int, margin: int
) -> np.ndarray:
    """Run a local filter on horizontal strips with overlapping margins, to bound memory."""
    height = plane.shape[0]
    if height <= rows + 2 * margin:
        return plane_filter(plane)
    output = np.empty_like(plane)
    for top in range(0, height, rows):
        start, stop = max(0, top - margin), min(height, top + rows + margin)
        filtered = plane_filter(plane[start:stop])
        output[top : min(height, top + rows)] = filtered[top - start : top - start + rows]
    return output


# ------------------------------------------------------------------------ sharpeners


def sharpen_laplacian(image: np.ndarray, kernel: str = "box") -> np.ndarray:
    """The original notebook's 3×3 Laplacian sharpening kernels (centre 5 or 9)."""
    return _to_uint8(cv2.filter2D(_as_float(image), -1, LAPLACIAN_KERNELS[kernel]))


def sharpen_unsharp(image: np.ndarray, radius: float = 1.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking: add back `amount` times the detail removed by a Gaussian blur."""
    image = _as_float(image)
    detail = image - cv2.GaussianBlur(image, (0, 0), radius)
    return _to_uint8(image + amount * detail)


def contrast_mask(image: np.ndarray, noise_sigma: float, window_sigma: float = 2.0) -> np.ndarray:
    """Soft mask in [0, 1]: ~1 on edges and texture, ~0 where local contrast is only noise.

    Local variance v against the noise variance σ²: m = v / (v + k·σ²), the shape
    of a Wiener gain, smooth so no halo appears at its border.
    """
    gray = quality.to_gray(image)
    mean = cv2.GaussianBlur(gray, (0, 0), window_sigma)
    variance = np.maximum(cv2.GaussianBlur(gray * gray, (0, 0), window_sigma) - mean**2, 0.0)
    mask = variance / (variance + 9.0 * max(noise_sigma, 1.0) ** 2)
    return mask[..., None] if np.ndim(image) == 3 else mask


def sharpen_noise_aware(
    image: np.ndarray, radius: float = 1.0, amount: float = 1.0, noise_sigma: float | None = None
) -> np.ndarray:
    """Unsharp masking gated by `contrast_mask`: edges sharpen, flat regions do not."""
    if noise_sigma is None:
        noise_sigma = quality.estimate_noise(image)
    image_f = _as_float(image)
    detail = image_f - cv2.GaussianBlur(image_f, (0, 0), radius)
    return _to_uint8(image_f + amount * contrast_mask(image, noise_sigma) * detail)


def deconvolution_kernel(blur_sigma: float, nsr: float, grid: int = 64) -> np.ndarray:
    """Spatial Wiener-deconvolution kernel for a Gaussian blur of width `blur_sigma`.

    W(f) = H(f) / (H(f)² + nsr), with H the Gaussian's transfer function; `nsr` (noise
    to signal power) bounds the high-frequency gain. Cropped to where it is non-zero
    and normalised so flat areas keep their brightness.
    """
    freq = np.fft.fftfreq(grid)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    transfer = np.exp(-2.0 * np.pi**2 * blur_sigma**2 * (fx**2 + fy**2))
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(transfer / (transfer**2 + nsr))))
    half = int(np.ceil(4 * blur_sigma)) + 1
    centre = grid // 2
    kernel = kernel[centre - half : centre + half + 1, centre - half : centre + half + 1]
    return (kernel / kernel.sum()).astype(np.float32)


def sharpen_deconvolve(
    image: np.ndarray, blur_sigma: float, nsr: float = 0.01, noise_sigma: float = 0.0
) -> np.ndarray:
    """Invert a Gaussian blur with a Wiener kernel; where `noise_sigma` > 0, gate by contrast."""
    image_f = _as_float(image)
    sharpened = cv2.filter2D(
        image_f, -1, deconvolution_kernel(blur_sigma, nsr), borderType=cv2.BORDER_REFLECT
    )
    if noise_sigma > 0:
        sharpened = image_f + contrast_mask(image, noise_sigma) * (sharpened - image_f)
    return _to_uint8(sharpened)


# ----------------------------------------------------------------------- auto policy


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
