"""Peak resident memory of this process, as the reports state it."""

from __future__ import annotations

import re
import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident memory since this process started its program, in MB.

    Linux's VmHWM where there is one: getrusage's ru_maxrss survives exec, so a child that a
    large process (the report writer) forks and execs would report its parent's peak.
    """
    if STATUS.exists():
        found = re.search(r"^VmHWM:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
        if found:
            return int(found.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
