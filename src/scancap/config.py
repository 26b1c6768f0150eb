"""Run settings: defaults in code, overridden by a TOML file, overridden by flags.

[run]
threshold = 0.8        # p(photo) from which an image is a photo (default: model card)
restore_mode = "auto-fast"  # or "auto" (better, ~10x slower), "none", one filter
restore_strength = 1.0  # scales the denoising σ: < 1 keeps more grain
beam = 3
workers = 2
copy_non_photos = true
caption_txt = false
max_pixels = 80_000_000
time_limit = 60.0      # seconds per image before it is given up as an error
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from scancap.io import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class RunConfig:
    """Every setting of `scancap run`; None means "use the shipped model's value"."""

    threshold: float | None = None
    restore_mode: str = "auto-fast"
    restore_strength: float = 1.0
    beam: int = 3
    workers: int = 2
    batch_size: int = 32
    copy_non_photos: bool = False
    caption_txt: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    time_limit: float = 60.0


def load_config(path: Path | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the TOML file's [run] table, then non-None keyword overrides.

    Unknown keys are an error (a typo in a config file should not pass silently).
    """
    config = RunConfig()
    if path is not None:
        with Path(path).open("rb") as handle:
            table = tomllib.load(handle).get("run", {})
        config = _apply(config, table, source=str(path))
    return _apply(config, {k: v for k, v in overrides.items() if v is not None}, source="flags")


def _apply(config: RunConfig, values: dict[str, Any], source: str) -> RunConfig:
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    return replace(config, **values)
