"""Where the repository keeps what the lab reads and writes: reports, labels and samples."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORTS = REPO_ROOT / "reports"
SAMPLES = REPO_ROOT / "samples"
LABELS = REPO_ROOT / "benchmarks" / "labels"
CAPTION_LABELS = LABELS / "caption_ood.csv"  # the hand-labelled out-of-domain photos
BENCHMARK_DATA = REPO_ROOT / "benchmarks" / "data"
DATASETS = REPO_ROOT.parent / "shared" / "datasets"  # a development machine's datasets


def reports_dir() -> Path:
    """Committed reports and figures."""
    return REPORTS


def use_the_repository_layout() -> None:
    """Read the datasets beside the checkout unless $SCANCAP_DATA says otherwise, whatever
    folder a benchmark or notebook runs from."""
    os.environ.setdefault("SCANCAP_DATA", str(DATASETS))
