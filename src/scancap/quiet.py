"""TensorFlow without its start-up noise, for every scancap entry point.

On its first import TensorFlow's C++ side writes a dozen lines to the process's stderr
(absl, oneDNN, CPU features), twice, before any setting can stop it; `TF_CPP_MIN_LOG_LEVEL`
only silences what comes after. `install` puts a finder on `sys.meta_path` that runs that one
import with file descriptor 2 pointed at /dev/null, whoever imports TensorFlow first (Keras,
scancap, a notebook), and then lowers TensorFlow's Python logger to errors. scancap's own
messages, and any error the import raises, are unaffected.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

QUIET_MODULE = "tensorflow"


@contextmanager
def descriptors_to(sink: int, descriptors: Sequence[int] = (2,)) -> Iterator[None]:
    """Point OS-level file descriptors at the open file `sink` for the block, then back: C
    libraries and child processes write to the descriptors, not to `sys.stderr`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in descriptors}
    try:
        for fd in descriptors:
            os.dup2(sink, fd)
        yield
    finally:
        sys.stdout.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)


@contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with descriptors_to(devnull):
            yield
    finally:
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with stderr_to_devnull():
            self.loader.exec_module(module)
        logging.getLogger(QUIET_MODULE).setLevel(logging.ERROR)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != QUIET_MODULE:
            return None
        sys.meta_path.remove(self)  # once: the real finders locate the package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet TensorFlow's first import (a no-op if it is imported already)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if QUIET_MODULE not in sys.modules and not any(
        isinstance(f, _QuietFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietFinder())
