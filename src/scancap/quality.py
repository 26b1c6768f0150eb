"""Image quality measures.

No-reference measures (noise level, blur) drive the automatic restoration policy;
full-reference measures (PSNR, SSIM) evaluate it against clean benchmarks.
All functions take uint8 or float images on the 0-255 scale unless stated.
"""

from __future__ import annotations

from functools import cache

import cv2
import imageio.v3 as iio
import numpy as np
from scipy.special import gammaincinv
from skimage.measure import blur_effect
from skimage.metrics import structural_similarity
from skimage.restoration import estimate_sigma

PSNR_CAP_DB = 100.0
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
LUMA_NOISE_GAIN = float(np.sqrt(np.sum(np.square(LUMA_WEIGHTS))))  # σ_luma / σ_channel


def to_float255(image: np.ndarray) -> np.ndarray:
    """Return a float32 copy on the 0-255 scale (uint8 in, or float already on 0-255)."""
    return np.asarray(image, dtype=np.float32)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) as float32 on 0-255; grey input is returned as float32."""
    image = to_float255(image)
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 0-255 data, capped for identical images."""
    mse = float(np.mean((to_float255(reference) - to_float255(test)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * np.log10(255.0**2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Structural similarity on 0-255 data (per channel, averaged, for colour)."""
    channel_axis = -1 if np.ndim(reference) == 3 else None
    return float(
        structural_similarity(
            to_float255(reference),
            to_float255(test),
            data_range=255.0,
            channel_axis=channel_axis,
        )
    )


def noise_sigma_wavelet(image: np.ndarray) -> float:
    """Noise σ (0-255) from the median absolute deviation of the finest wavelet band.

    The classic Donoho estimator: fast, but textured images inflate it at low noise.
    """
    channel_axis = -1 if np.ndim(image) == 3 else None
    sigma = estimate_sigma(to_float255(image), channel_axis=channel_axis, average_sigmas=True)
    return float(sigma)


def _patch_matrix(plane: np.ndarray, size: int, max_patches: int, seed: int) -> np.ndarray:
    """Random sample of flattened size×size patches of a 2-D or 3-D array, as float32 rows."""
    windows = np.lib.stride_tricks.sliding_window_view(plane, (size, size), axis=(0, 1))
    rows, cols = windows.shape[:2]
    rng = np.random.default_rng(seed)
    count = min(max_patches, rows * cols)
    picks = rng.choice(rows * cols, size=count, replace=False)
    return windows[picks // cols, picks % cols].reshape(count, -1).astype(np.float32)


def noise_sigma_pca(
    image: np.ndarray, patch_size: int = 7, max_patches: int = 10000, seed: int = 0
) -> float:
    """Noise σ (0-255) from the smallest eigenvalues of the patch covariance.

    Natural image patches live close to a low-dimensional subspace, so the trailing
    eigenvalues of their covariance are pure noise variance. Following Chen, Zhu and
    Heng (ICCV 2015), the noise eigenvalues are the longest prefix of the sorted
    spectrum whose mean equals its median. Far less biased by texture than the
    wavelet MAD, which matters for deciding whether a clean image needs denoising.
    """
    patches = _patch_matrix(np.asarray(image), patch_size, max_patches, seed)
    centred = patches - patches.mean(axis=0)
    covariance = (centred.T @ centred).astype(np.float64) / (len(centred) - 1)
    eigenvalues = np.sort(np.linalg.eigvalsh(covariance))
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return float(np.sqrt(_noise_eigenvalue_mean(eigenvalues)))


def _noise_eigenvalue_mean(ascending: np.ndarray) -> float:
    """Mean of the longest prefix of sorted eigenvalues whose mean is also its median.

    For every prefix length c at once: τ_c is the prefix mean, and the prefix is
    balanced when as many of its values lie above τ_c as below it.
    """
    counts = np.arange(1, len(ascending) + 1)
    means = np.cumsum(ascending) / counts
    in_prefix = counts[None, :] <= counts[:, None]  # row c: first c eigenvalues
    above = ((ascending[None, :] > means[:, None]) & in_prefix).sum(axis=1)
    below = ((ascending[None, :] < means[:, None]) & in_prefix).sum(axis=1)
    balanced = np.flatnonzero(above == below)
    return float(means[balanced[-1]] if balanced.size else ascending[0])


def estimate_noise(image: np.ndarray, fast: bool = False, shared: bool = True) -> float:
    """scancap's noise estimate σ̂ (0-255) per channel.

    Per channel, the smaller of the PCA and wavelet estimates: both are accurate on noise over
    smooth content and both read strong texture as noise, each on different textures, so the
    smaller one rarely mistakes a clean textured image for a noisy one. Both read the colour
    patches, whose smallest eigenvalues are the chroma's: noise the three channels share (grey
    film grain, and what a JPEG keeps of a scan's noise) hides there. With `shared`, a colour
    image's σ̂ is the larger of that and the weak-texture estimate of its luma, which sees it
    (reports/noise_shared.md). A grey image stored as RGB is measured as grey. `fast` uses
    fewer patches for the PCA and the wavelet estimate of the luma only.
    """
    image = np.asarray(image)
    if image.ndim == 3 and _channels_equal(image):
        image = image[..., 0]
    if fast:
        sigma = min(noise_sigma_pca(image, max_patches=3000), _luma_noise_sigma(image))
    else:
        sigma = min(noise_sigma_pca(image), noise_sigma_wavelet(image))
    if shared and image.ndim == 3:
        # 10,000 patches on the fast path too: few flat patches bias the smallest eigenvalue low
        sigma = max(sigma, noise_sigma_weak_texture(image))
    return sigma


WEAK_TEXTURE_QUANTILE = 0.99  # share of pure-noise patches kept by the texture test


def noise_sigma_weak_texture(
    image: np.ndarray, patch_size: int = 7, max_patches: int = 10000, seed: int = 0
) -> float:
    """Noise σ (0-255) of the luma, from its weakly textured patches.

    Liu, Tanaka and Okutomi (2013): keep the patches whose gradient energy a noise of the
    current σ would explain (a gamma quantile), take σ² as the smallest eigenvalue of their
    covariance, and repeat. Flat patches carry the noise without the texture. The patches are
    sampled from the image and converted to luma one by one, so a large scan is never copied.
    """
    patches = _patch_matrix(np.asarray(image), patch_size, max_patches, seed)
    if patches.shape[1] != patch_size * patch_size:  # colour: channel-major rows
        luma = np.asarray(LUMA_WEIGHTS, np.float32)
        patches = np.einsum("nck,c->nk", patches.reshape(len(patches), 3, -1), luma)
    patches = patches.astype(np.float64)
    derivatives, threshold = _texture_test(patch_size)
    energy = ((patches @ derivatives.T) ** 2).sum(axis=1)
    variance = _smallest_eigenvalue(patches)
    for _ in range(5):
        flat = energy < variance * threshold
        if flat.sum() < 2 * patches.shape[1]:
            break
        variance = _smallest_eigenvalue(patches[flat])
    return float(np.sqrt(variance))


@cache
def _texture_test(size: int) -> tuple[np.ndarray, float]:
    """The forward differences of a flattened size x size patch (horizontal and vertical,
    stacked) and the gradient-energy threshold per unit of noise variance: once per size, as
    every photo the pipeline restores is measured with them."""
    index = np.arange(size * size).reshape(size, size)
    pairs = [(index[:, :-1], index[:, 1:]), (index[:-1, :], index[1:, :])]
    first = np.concatenate([a.ravel() for a, _ in pairs])
    second = np.concatenate([b.ravel() for _, b in pairs])
    operators = np.zeros((len(first), size * size))
    operators[np.arange(len(first)), first] = -1.0
    operators[np.arange(len(first)), second] = 1.0
    operators.setflags(write=False)  # cached: shared by every call
    # For pure noise of variance v, energy / v follows a gamma law of shape pixels / 2 and
    # scale 2 tr(DᵀD) / pixels: its quantile is the texture threshold.
    pixels = size * size
    scale = 2.0 * np.trace(operators.T @ operators) / pixels
    return operators, float(gammaincinv(pixels / 2, WEAK_TEXTURE_QUANTILE) * scale)


def _smallest_eigenvalue(patches: np.ndarray) -> float:
    return max(float(np.linalg.eigvalsh(np.cov(patches, rowvar=False))[0]), 0.0)


def _luma_noise_sigma(image: np.ndarray) -> float:
    """Per-channel noise σ from the luma's wavelet MAD (luma averages i.i.d. channel noise)."""
    if image.ndim == 2:
        return noise_sigma_wavelet(image)
    return noise_sigma_wavelet(to_gray(image)) / LUMA_NOISE_GAIN


def _channels_equal(image: np.ndarray) -> bool:
    return bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    )


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the Laplacian: the original notebook's sharpness score (higher = sharper).

    Scene-dependent and noise-sensitive, kept for comparison with the original work.
    """
    return float(cv2.Laplacian(to_gray(image), cv2.CV_32F).var())


def blur_score(image: np.ndarray) -> float:
    """scikit-image's blur effect (Crété-Roffet et al. 2007): 0 sharp … 1 very blurred.

    Compares the image with a re-blurred copy, so it is less scene-dependent than the
    variance of the Laplacian.
    """
    return float(blur_effect(to_gray(image) / 255.0))


def edge_blur_sigma(image: np.ndarray, reblur_sigma: float = 1.0, min_edges: int = 200) -> float:
    """Width σ (pixels) of the Gaussian blur seen at strong edges, by the re-blur ratio.

    A step edge blurred by σ has a gradient peak ∝ 1/σ; blurring it again with σ₀
    gives ∝ 1/√(σ² + σ₀²). The ratio R of the two peaks gives σ = σ₀ / √(R² − 1)
    (Zhuo and Sim 2011). The median over Canny edge pixels is robust to texture.
    Returns NaN when the image has too few edges to measure.
    """
    gray = to_gray(image)
    reblurred = cv2.GaussianBlur(gray, (0, 0), reblur_sigma)
    gradient = _gradient_magnitude(gray)
    gradient_reblurred = _gradient_magnitude(reblurred)
    edges = cv2.Canny(np.clip(gray, 0, 255).astype(np.uint8), 50, 150, L2gradient=True) > 0
    edges &= gradient > np.percentile(gradient, 90)
    if edges.sum() < min_edges:
        return float("nan")
    ratio = gradient[edges] / np.maximum(gradient_reblurred[edges], 1e-6)
    ratio = ratio[ratio > 1.0 + 1e-3]
    if ratio.size < min_edges:
        return float("nan")
    sigmas = reblur_sigma / np.sqrt(ratio**2 - 1.0)
    return float(np.median(sigmas))


def _gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of a float32 grey image."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def degrade(
    image: np.ndarray,
    noise_sigma: float = 0.0,
    blur_sigma: float = 0.0,
    seed: int = 0,
    shared: bool = False,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """Synthetic degradation for full-reference evaluation: Gaussian blur, then noise.

    The noise is drawn per channel, or once and `shared` by a colour image's channels (grey
    film grain). The result is clipped and rounded to uint8, as a real scan would be stored,
    and with `jpeg_quality` saved as JPEG and read back (4:2:0 chroma subsampling), which
    keeps mostly the grey part of the noise.
    """
    degraded = to_float255(image)
    if blur_sigma > 0:
        degraded = cv2.GaussianBlur(degraded, (0, 0), blur_sigma, borderType=cv2.BORDER_REFLECT)
    if noise_sigma > 0:
        shape = degraded.shape[:2] if shared else degraded.shape
        noise = np.random.default_rng(seed).normal(0.0, noise_sigma, shape)
        degraded = degraded + (noise[..., None] if shared and degraded.ndim == 3 else noise)
    degraded = np.clip(np.rint(degraded), 0, 255).astype(np.uint8)
    if jpeg_quality is None:
        return degraded
    encoded = iio.imwrite("<bytes>", degraded, extension=".jpg", quality=jpeg_quality)
    return iio.imread(encoded)
