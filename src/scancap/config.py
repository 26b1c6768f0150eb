"""Run settings: defaults in code, overridden by a TOML file, overridden by flags.

[run]
threshold = 0.8        # p(photo) from which an image is a photo (default: model card)
restore_mode = "auto-fast"  # or "auto" (better, ~10x slower), "none", one filter
restore_strength = 1.0  # scales the denoising σ: < 1 keeps more grain
beam = 3
objects = true         # detect COCO objects in photos and ground the captions' object words
                       # (false: about twice the photos/s; captions ground people and animals only)
workers = 2
copy_non_photos = true
caption_txt = false
max_pixels = 50_000_000
pdf_dpi = 300          # PDF pages are rendered at this resolution
pixel_budget = 24_000_000  # pixels decoded per batch and restored at once (memory)
time_limit = 60.0      # seconds of restoration per image (then kept unrestored)
ocr = "text"           # read text pages with Tesseract; "all-non-photos", or "off"
ocr_languages = "eng+fra"
ocr_time_limit = 120.0 # seconds of OCR per page (then the page has no text, and says why)
searchable_pdf = false # also write searchable/<name>.pdf: the page with its text layer

All three sources go through one typed, range-checked model: a wrong type or an out-of-range
value is a ConfigError naming the source, the key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scancap.io import DEFAULT_MAX_PIXELS
from scancap.pages import DEFAULT_DPI

DEFAULT_PIXEL_BUDGET = 24_000_000

# The restoration modes of scancap.restore.auto.MODES (a test keeps the two lists equal).
RestoreModeName = Literal[
    "auto",
    "auto-fast",
    "none",
    "denoise-dct",
    "denoise-nlm",
    "denoise-gaussian",
    "denoise-median",
    "denoise-bilateral",
    "sharpen-laplacian",
    "sharpen-unsharp",
    "sharpen-noise-aware",
]
RESTORE_MODES: tuple[str, ...] = get_args(RestoreModeName)


class ConfigError(ValueError):
    """A setting scancap refuses, in one line: where it came from, key, value, what is allowed."""


class RunConfig(BaseModel):
    """Every setting of `scancap run`; threshold None means "use the shipped model's value"."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    threshold: float | None = Field(None, ge=0.0, le=1.0)
    restore_mode: RestoreModeName = "auto-fast"
    restore_strength: float = Field(1.0, gt=0.0, le=4.0)
    beam: int = Field(3, ge=1, le=20)
    objects: bool = True  # the COCO detector: objects in the outputs, object words grounded
    workers: int = Field(2, ge=1, le=64)
    batch_size: int = Field(32, ge=1, le=1024)
    copy_non_photos: bool = False
    caption_txt: bool = False
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    pdf_dpi: int = Field(DEFAULT_DPI, ge=50, le=1200)  # what PDF pages are rendered at
    # Decoded pixels per batch, and pixels being restored at once: memory follows pixels.
    pixel_budget: int = Field(DEFAULT_PIXEL_BUDGET, ge=1_000_000)
    time_limit: float = Field(60.0, gt=0.0)
    ocr: Literal["text", "all-non-photos", "off"] = "text"
    ocr_languages: str = Field("eng+fra", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")
    ocr_time_limit: float = Field(120.0, gt=0.0)
    searchable_pdf: bool = False

    def settings(self) -> dict[str, Any]:
        """The settings as plain values (for run.json and the ledger's settings key)."""
        return self.model_dump()


def load_config(path: Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file's [run] table, then non-None keyword overrides.

    Unknown keys are an error (a typo in a config file should not pass silently).
    """
    config = RunConfig()
    if path is not None:
        config = _apply(config, read_run_table(Path(path)), source=str(path))
    return _apply(config, {k: v for k, v in overrides.items() if v is not None}, source="flags")


def read_run_table(path: Path) -> dict[str, Any]:
    """The file's [run] table; anything else in the file (a setting above any table, or a
    misspelt table such as [rnu]) is an error, since scancap would otherwise ignore it."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    for key, value in document.items():
        if key != "run":
            where = f"table [{key}]" if isinstance(value, dict) else f"setting {key} outside [run]"
            raise ConfigError(f"{path}: unknown {where} (settings go in the [run] table)")
    run = document.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: run must be a table ([run]), not a value")
    return run


def _apply(config: RunConfig, values: dict[str, Any], source: str) -> RunConfig:
    unknown = sorted(set(values) - set(RunConfig.model_fields))
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    try:
        return RunConfig.model_validate({**config.model_dump(), **values})
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0])
        message = first["msg"][0].lower() + first["msg"][1:]
        raise ConfigError(f"{source}: {key} = {values.get(key)!r}: {message}") from None
