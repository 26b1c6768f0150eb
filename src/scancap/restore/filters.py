"""Denoising and sharpening filters: plain functions on uint8 arrays.

Every filter takes a uint8 RGB or grey image (0-255) and returns uint8 of the same
shape. Internally work is done in float32 on the 0-255 scale.

The main denoiser is a sliding-window DCT filter (Yu and Sapiro, IPOL 2011) with a
second, empirical Wiener pass as in BM3D: each 8×8 patch is projected on the DCT
basis, which is a bank of 64 separable convolution kernels; small coefficients are
noise and are dropped, and the overlapping estimates are averaged. Sharpening inverts
a Gaussian blur with a regularised (Wiener) deconvolution kernel, itself a small
convolution, gated by a local-contrast mask so that flat regions keep their noise
level.
"""

from __future__ import annotations

from collections.abc import Callable

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


STRIP_ROWS = 512  # rows of a large image deconvolved at once: its float copies follow the strip
MASK_RADIUS = 8  # rows contrast_mask reads on either side (OpenCV's kernel for σ=2 is 17 wide)


def sharpen_deconvolve(
    image: np.ndarray, blur_sigma: float, nsr: float = 0.01, noise_sigma: float = 0.0
) -> np.ndarray:
    """Invert a Gaussian blur with a Wiener kernel; where `noise_sigma` > 0, gate by contrast.

    Large images go through in strips of STRIP_ROWS rows that overlap by what the filters
    read, so the result is the whole image's while the float temporaries (about 50 bytes per
    pixel) stay those of one strip: a 80-megapixel scan no longer needs 4 GB.
    """
    kernel = deconvolution_kernel(blur_sigma, nsr)
    margin = kernel.shape[0] // 2 + MASK_RADIUS + 1
    height = image.shape[0]
    restored = np.empty(image.shape, np.uint8)
    for top in range(0, height, STRIP_ROWS):
        bottom = min(top + STRIP_ROWS, height)
        first, last = max(0, top - margin), min(height, bottom + margin)
        strip = _deconvolve(image[first:last], kernel, noise_sigma)
        restored[top:bottom] = strip[top - first : bottom - first]
    return restored


def _deconvolve(image: np.ndarray, kernel: np.ndarray, noise_sigma: float) -> np.ndarray:
    image_f = _as_float(image)
    sharpened = cv2.filter2D(image_f, -1, kernel, borderType=cv2.BORDER_REFLECT)
    if noise_sigma > 0:
        sharpened = image_f + contrast_mask(image, noise_sigma) * (sharpened - image_f)
    return _to_uint8(sharpened)
