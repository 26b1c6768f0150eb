"""Where scancap finds its shipped models and the datasets (both configurable)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    """Shipped trained models: the repository's models/ folder, or $SCANCAP_MODELS."""
    return Path(os.environ.get("SCANCAP_MODELS", REPO_ROOT / "models"))


def data_dir() -> Path:
    """Training and benchmark data: $SCANCAP_DATA, by default ../shared/datasets."""
    return Path(os.environ.get("SCANCAP_DATA", REPO_ROOT.parent / "shared" / "datasets"))


def reports_dir() -> Path:
    """Committed reports and figures."""
    return REPO_ROOT / "reports"
