"""scancap: sort, restore and caption scanned images.

`from scancap import Pipeline` gives the whole product as a Python API; it is imported on first
use, so that `scancap --help` and the light modules never load TensorFlow.
"""

from __future__ import annotations

from typing import Any

from scancap import quiet

quiet.install()  # TensorFlow's C++ start-up lines stay out of terminals and notebooks

__version__ = "0.3.0"
_LAZY = {
    "Pipeline": "scancap.pipeline.compose",
    "Result": "scancap.pipeline.compose",
    "RunConfig": "scancap.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scancap' has no attribute {name!r}")
