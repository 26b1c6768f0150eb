"""Restoration filters and the auto policy on real photographs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data
from threadpoolctl import threadpool_info, threadpool_limits

from scancap import quality, restore
from scancap.restore.workers import RestoreWorkers


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return data.coffee()


@pytest.fixture(scope="module")
def noisy_coffee(coffee: np.ndarray) -> np.ndarray:
    return quality.degrade(coffee, noise_sigma=25, seed=11)


@pytest.mark.parametrize(
    "denoise",
    [
        lambda im: restore.denoise_dct(im, 25),
        lambda im: restore.denoise_nlm(im, 22),
        lambda im: restore.denoise_bilateral(im, 75, 2),
        lambda im: restore.denoise_gaussian(im, 1.2),
        lambda im: restore.denoise_median(im, 3),
    ],
    ids=["dct", "nlm", "bilateral", "gaussian", "median"],
)
def test_denoisers_lower_noise_and_raise_psnr(
    denoise, coffee: np.ndarray, noisy_coffee: np.ndarray
) -> None:
    output = denoise(noisy_coffee)
    assert output.dtype == np.uint8 and output.shape == coffee.shape
    assert quality.estimate_noise(output) < 0.6 * quality.estimate_noise(noisy_coffee)
    assert quality.psnr(coffee, output) > quality.psnr(coffee, noisy_coffee) + 3


def test_dct_denoiser_beats_opencv_nlm(coffee: np.ndarray, noisy_coffee: np.ndarray) -> None:
    dct = quality.psnr(coffee, restore.denoise_dct(noisy_coffee, 25))
    nlm = quality.psnr(coffee, restore.denoise_nlm(noisy_coffee, 22))
    assert dct > nlm + 1.0


def test_dct_denoiser_works_on_grey_and_in_strips() -> None:
    camera = data.camera()
    noisy = quality.degrade(camera, noise_sigma=15, seed=2)
    whole = restore.denoise_dct(noisy, 15, rows_per_strip=1024)
    strips = restore.denoise_dct(noisy, 15, rows_per_strip=64)
    assert whole.ndim == 2
    # Equal up to float rounding: the matrix products see other shapes, and a rounding
    # difference can flip a pixel by one level. A wrong strip margin changes far more.
    differs = whole != strips
    assert np.abs(whole.astype(int) - strips).max() <= 1 and differs.mean() < 1e-3
    assert quality.psnr(camera, whole) > quality.psnr(camera, noisy) + 5


@pytest.mark.parametrize(
    "sharpen",
    [
        lambda im: restore.sharpen_laplacian(im, "cross"),
        lambda im: restore.sharpen_laplacian(im, "box"),
        lambda im: restore.sharpen_unsharp(im, 1.0, 1.0),
        lambda im: restore.sharpen_noise_aware(im, 1.0, 1.0),
        lambda im: restore.sharpen_deconvolve(im, 1.0, 0.02),
    ],
    ids=["laplacian-cross", "laplacian-box", "unsharp", "noise-aware", "deconvolve"],
)
def test_sharpeners_raise_sharpness(sharpen, coffee: np.ndarray) -> None:
    blurred = quality.degrade(coffee, blur_sigma=1.5)
    output = sharpen(blurred)
    assert quality.laplacian_variance(output) > 1.5 * quality.laplacian_variance(blurred)
    assert quality.blur_score(output) < quality.blur_score(blurred)


def test_deconvolution_restores_a_known_blur(coffee: np.ndarray) -> None:
    blurred = quality.degrade(coffee, blur_sigma=1.0)
    restored = restore.sharpen_deconvolve(blurred, 1.0, 0.01)
    assert quality.psnr(coffee, restored) > quality.psnr(coffee, blurred) + 2


def test_noise_aware_sharpening_leaves_flat_noise_alone() -> None:
    flat = quality.degrade(np.full((128, 128, 3), 120, np.uint8), noise_sigma=8, seed=5)
    plain = restore.sharpen_unsharp(flat, 1.0, 1.5)
    gated = restore.sharpen_noise_aware(flat, 1.0, 1.5, noise_sigma=8)
    assert quality.estimate_noise(gated) < 0.8 * quality.estimate_noise(plain)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera"])
def test_auto_does_no_harm_on_clean_images(name: str) -> None:
    image = getattr(data, name)()
    output, record = restore.auto_restore(image)
    assert quality.psnr(image, output) >= 45
    assert record.denoiser == "none"


def test_auto_denoises_then_sharpens_and_records_it(coffee: np.ndarray) -> None:
    degraded = quality.degrade(coffee, noise_sigma=15, blur_sigma=1.0, seed=4)
    output, record = restore.auto_restore(degraded)
    assert record.denoiser == "dct-wiener"
    assert record.denoise_sigma == pytest.approx(15, rel=0.2)
    assert record.after.noise_sigma < record.before.noise_sigma
    assert quality.psnr(coffee, output) > quality.psnr(coffee, degraded) + 2
    row = record.flat()
    assert {"before_noise_sigma", "after_edge_blur", "denoiser", "sharpen_sigma"} <= set(row)


def test_auto_sharpens_blur_without_knowing_it(coffee: np.ndarray) -> None:
    blurred = quality.degrade(coffee, blur_sigma=1.0)
    output, record = restore.auto_restore(blurred)
    assert record.sharpener == "deconvolve"
    assert quality.psnr(coffee, output) > quality.psnr(coffee, blurred) + 1.5


def test_fast_path_uses_the_bilateral_filter(noisy_coffee: np.ndarray, coffee: np.ndarray) -> None:
    output, record = restore.auto_restore(noisy_coffee, restore.AutoPolicy(fast=True))
    assert record.denoiser == "bilateral"
    assert quality.psnr(coffee, output) > quality.psnr(coffee, noisy_coffee) + 5


def test_every_mode_returns_uint8_of_the_same_shape(noisy_coffee: np.ndarray) -> None:
    small = noisy_coffee[:96, :128]
    for mode in restore.MODES:
        output, record = restore.restore_image(small, mode)
        assert output.dtype == np.uint8 and output.shape == small.shape, mode
        assert record.seconds >= 0


def test_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown restore mode"):
        restore.restore_image(np.zeros((8, 8, 3), np.uint8), "magic")


def test_strength_scales_the_denoiser(noisy_coffee: np.ndarray) -> None:
    _, gentle = restore.restore_image(noisy_coffee, "auto-fast", strength=0.5)
    _, strong = restore.restore_image(noisy_coffee, "auto-fast", strength=2.0)
    assert strong.denoise_sigma == pytest.approx(4 * gentle.denoise_sigma)
    with pytest.raises(ValueError, match="strength"):
        restore.restore_image(noisy_coffee, "auto", strength=0)


def test_restore_and_measure_fills_the_fast_paths_after_measures(
    noisy_coffee: np.ndarray, coffee: np.ndarray
) -> None:
    _, record = restore.restore_and_measure(noisy_coffee, "auto-fast")
    assert record.after.noise_sigma < record.before.noise_sigma / 2
    _, clean = restore.restore_and_measure(coffee, "auto-fast")
    assert clean.after == clean.before  # passed through: nothing to re-measure


@pytest.mark.parametrize(("blur_sigma", "noise_sigma"), [(1.5, 10.0), (3.0, 0.0)])
def test_deconvolution_in_strips_equals_the_whole_image(
    monkeypatch: pytest.MonkeyPatch, blur_sigma: float, noise_sigma: float
) -> None:
    """Large scans are deconvolved strip by strip to bound memory; the pixels must not change."""
    from scancap.restore import filters

    rng = np.random.default_rng(3)
    image = cv2.resize(data.astronaut(), (700, 1100))
    image = np.clip(image + rng.normal(0, noise_sigma + 1, image.shape), 0, 255).astype(np.uint8)
    monkeypatch.setattr(filters, "STRIP_ROWS", 128)
    strips = filters.sharpen_deconvolve(image, blur_sigma, 0.02, noise_sigma)
    monkeypatch.setattr(filters, "STRIP_ROWS", 10**9)
    assert np.array_equal(strips, filters.sharpen_deconvolve(image, blur_sigma, 0.02, noise_sigma))


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_restore_workers_keep_blas_on_one_thread_while_any_run_and_restore_it_after(
    noisy_coffee: np.ndarray,
) -> None:
    """Two workers each calling a multi-threaded BLAS oversubscribe two cores. The setting is
    the process's: it lasts until the last workers close, in whatever order."""
    with threadpool_limits(2, user_api="blas"):
        first = RestoreWorkers("auto-fast", 1.0, workers=2, time_limit=60)
        second = RestoreWorkers("auto-fast", 1.0, workers=1, time_limit=60)
        try:
            assert _blas_threads() and set(_blas_threads()) == {1}
            expected, _ = restore.restore_image(noisy_coffee, "auto-fast")
            (restored, record), _ = first.collect(first.submit([noisy_coffee, noisy_coffee]))
            first.close()
            first.close()  # closing twice releases once
            assert set(_blas_threads()) == {1}  # the second workers still run
        finally:
            first.close()
            second.close()
        assert set(_blas_threads()) == {2}
    assert record.denoiser == "bilateral" and np.array_equal(restored, expected)


def test_auto_fast_denoises_grey_grain_and_a_noisy_jpeg(coffee: np.ndarray) -> None:
    """Grain the channels share and noise kept by JPEG were left as they came before
    (reports/noise_shared.md); both are denoised now and come out closer to the clean photo."""
    shared = quality.degrade(coffee, 15.0, seed=4, shared=True)
    for noisy in (shared, quality.degrade(coffee, 15.0, jpeg_quality=90)):
        output, record = restore.restore_image(noisy, "auto-fast")
        assert record.denoiser == "bilateral"
        assert quality.psnr(coffee, output) > quality.psnr(coffee, noisy) + 1.0


def test_a_smooth_page_with_no_edges_says_so_instead_of_nan() -> None:
    page = np.full((300, 300, 3), 200, np.uint8)  # a blank PDF page: nothing to measure
    restored, record = restore.restore_image(page, "auto-fast")
    assert "no edges to measure: not sharpened" in record.notes
    assert not any("nan" in note for note in record.notes)
    assert np.array_equal(restored, page)
