"""Restoration: denoising and sharpening with convolutional filters, and the policy that decides.

`restore_image(image, mode, strength)` is the entry point (`auto` measures noise and blur and
chooses); the filters are plain functions on uint8 arrays, as in `skimage.restoration`.
"""

from scancap.restore.auto import (
    MODES,
    AutoPolicy,
    Measurements,
    RestoreRecord,
    auto_restore,
    measure,
    measure_fast,
    restore_and_measure,
    restore_image,
)
from scancap.restore.filters import (
    LAPLACIAN_KERNELS,
    contrast_mask,
    dct_matrix,
    deconvolution_kernel,
    denoise_bilateral,
    denoise_bm3d,
    denoise_dct,
    denoise_gaussian,
    denoise_median,
    denoise_nlm,
    sharpen_deconvolve,
    sharpen_laplacian,
    sharpen_noise_aware,
    sharpen_unsharp,
)

__all__ = [
    "LAPLACIAN_KERNELS",
    "MODES",
    "AutoPolicy",
    "Measurements",
    "RestoreRecord",
    "auto_restore",
    "contrast_mask",
    "dct_matrix",
    "deconvolution_kernel",
    "denoise_bilateral",
    "denoise_bm3d",
    "denoise_dct",
    "denoise_gaussian",
    "denoise_median",
    "denoise_nlm",
    "measure",
    "measure_fast",
    "restore_and_measure",
    "restore_image",
    "sharpen_deconvolve",
    "sharpen_laplacian",
    "sharpen_noise_aware",
    "sharpen_unsharp",
]
