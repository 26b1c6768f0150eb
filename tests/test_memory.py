"""Peak memory as the speed benchmarks report it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from scancap.memory import peak_rss_mb


def test_a_child_process_reports_its_own_peak_not_its_parents() -> None:
    """The classifier's speed is measured in a child of the report writer: a child forked from
    a large parent must not inherit the parent's peak (getrusage's ru_maxrss does)."""
    ballast = np.ones(400 * 2**20, np.uint8)  # 400 MB resident here
    code = "from scancap.memory import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    parent = peak_rss_mb()
    assert parent > 400 and ballast.sum() == ballast.size
    assert float(child.stdout) < 150  # a bare interpreter, not the parent's 400+ MB
