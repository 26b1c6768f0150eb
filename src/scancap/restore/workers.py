"""Restoration on worker threads under a per-image time limit (`scancap run` and `restore`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from threadpoolctl import threadpool_limits

from scancap.batch import error_reason
from scancap.restore.auto import RestoreRecord, restore_and_measure


class PixelGate:
    """Admits jobs by pixels: they run together only while their pixels fit the budget (a job
    larger than the whole budget runs alone), so restoration memory follows pixels."""

    def __init__(self, budget: int | None) -> None:
        self.budget, self.used = budget, 0
        self._changed = threading.Condition()

    @contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        if not self.budget:
            yield
            return
        with self._changed:
            self._changed.wait_for(lambda: self.used == 0 or self.used + pixels <= self.budget)
            self.used += pixels
        try:
            yield
        finally:
            with self._changed:
                self.used -= pixels
                self._changed.notify_all()


class OneBlasThread:
    """NumPy's BLAS on one thread while at least one holder needs it, as before once none does.

    The setting is the process's, so holders are counted: the first sets it, the last restores
    it, whatever order they close in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._limits: threadpool_limits | None = None

    def hold(self) -> None:
        with self._lock:
            if not self._holders:
                self._limits = threadpool_limits(1, user_api="blas")
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if not self._holders and self._limits is not None:
                self._limits.restore_original_limits()
                self._limits = None


ONE_BLAS_THREAD = OneBlasThread()


class RestoreWorkers:
    """Restoration on worker threads (OpenCV and NumPy release the GIL), under a time limit.

    An image that runs out of time is reported as such and the batch goes on. Python cannot kill
    a thread, so its computation finishes in the background on an abandoned pool (max_pixels
    bounds how long that can be) while a fresh pool serves the next images.

    While any workers exist, NumPy's BLAS runs on one thread in the whole process (the
    service's too, for its lifetime): the workers are the parallelism. Each worker's noise
    estimate calls BLAS, and OpenBLAS's own threads, one set per call, spun against the other
    worker and the models on two cores: restoration took twice as long in the pipeline benchmark
    (`reports/pipeline.md`). The setting changes when the first workers start and the last close;
    a restoration abandoned after its time limit may still be running then.
    """

    def __init__(
        self,
        mode: str,
        strength: float,
        workers: int,
        time_limit: float,
        pixel_budget: int | None = None,
    ) -> None:
        self.mode, self.strength = mode, strength
        self.workers, self.time_limit = max(1, workers), time_limit
        self._gate = PixelGate(pixel_budget)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="restore")
        ONE_BLAS_THREAD.hold()
        self._holding = True

    def submit(self, images: list[np.ndarray]) -> list[Future]:
        """Start restoring; the caller does other work (the next batch) meanwhile."""
        return [self._pool.submit(self._restore, image) for image in images]

    def _restore(self, image: np.ndarray) -> tuple[np.ndarray, RestoreRecord]:
        with self._gate.admit(image.shape[0] * image.shape[1]):
            return restore_and_measure(image, self.mode, self.strength)

    def collect(self, jobs: list[Future]) -> list[tuple[np.ndarray, RestoreRecord] | str]:
        """(restored, record) per job, or the reason it failed, in order."""
        results: list[tuple[np.ndarray, RestoreRecord] | str] = []
        timed_out = False
        for job in jobs:  # each waits the whole limit after the previous one is in
            try:
                results.append(job.result(timeout=self.time_limit))
            except TimeoutError:
                results.append(f"restoration took longer than the {self.time_limit:g} s limit")
                timed_out = True
            except (ValueError, MemoryError, OSError) as error:
                results.append(f"restoration failed: {error_reason(error)}")
        if timed_out:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="restore")
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._holding:  # closing twice releases once
            ONE_BLAS_THREAD.release()
            self._holding = False
