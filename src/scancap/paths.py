"""Where scancap finds its models, the datasets and its caches: settings, not a repository.

The shipped models are the package's own `models` folder (in a checkout, a link to the
repository's `models/`); `SCANCAP_MODELS` points elsewhere. The datasets and the feature caches
are settings with user-level defaults, so an installed scancap works from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_DATA = Path("..") / "shared" / "datasets"


def models_dir() -> Path:
    """Shipped trained models: $SCANCAP_MODELS, else the models installed with scancap."""
    return Path(os.environ.get("SCANCAP_MODELS") or PACKAGE_MODELS)


def data_dir() -> Path:
    """Training and benchmark data: $SCANCAP_DATA, else ../shared/datasets from the current
    folder (the layout of a development machine)."""
    return Path(os.environ.get("SCANCAP_DATA") or DEFAULT_DATA)


def cache_dir() -> Path:
    """Feature caches, rebuilt when missing: $SCANCAP_CACHE, else the user's cache folder
    ($XDG_CACHE_HOME/scancap, by default ~/.cache/scancap)."""
    if explicit := os.environ.get("SCANCAP_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scancap"
