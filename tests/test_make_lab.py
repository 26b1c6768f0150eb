"""`make lab` as a new user runs it (as root in a container too): JupyterLab starts on the
notebooks and prints the URL to open."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_lab_starts_and_prints_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = os.environ | {"JUPYTER_PORT": str(port), "JUPYTER_RUNTIME_DIR": "/tmp"}
    lab = subprocess.Popen(
        ["make", "-s", "lab"], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    seen, url = [], None
    deadline = time.monotonic() + 120
    try:
        while url is None and time.monotonic() < deadline and lab.poll() is None:
            line = lab.stdout.readline()
            seen.append(line)
            if match := re.search(rf"http://(localhost|127\.0\.0\.1):{port}/lab\?token=\w+", line):
                url = match.group(0)
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(30)
    assert url, "".join(seen[-20:])
    assert "allow-root" not in "".join(seen).replace("--allow-root", "")  # no refusal as root
