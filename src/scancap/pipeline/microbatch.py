"""Micro-batching for the service: concurrent requests share the neural stages' batches.

A request's pages are decoded in the request's own thread, then handed to one scheduler thread
that gathers the pages of every request waiting (up to `max_items`, or for at most `max_wait`
seconds after the first), classifies them as one batch and starts restoring its photos on the
worker threads; it finishes the previous batch (restoration collected, photos captioned) while
this one restores, as `scancap run` does. A forward pass of 16 images costs far less than 16
passes of one, so throughput under load approaches the batch command's.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from scancap.batch import Loaded
from scancap.pipeline.compose import Batch, Pipeline, Result

Items = list[tuple[Result, Loaded]]
_STOP = object()


class MicroBatcher:
    """Runs `Pipeline.start_batch` / `finish_batch` on the pages of many requests at once."""

    def __init__(self, pipeline: Pipeline, max_items: int = 16, max_wait: float = 0.02) -> None:
        self.pipeline, self.max_items, self.max_wait = pipeline, max_items, max_wait
        self._queue: queue.Queue = queue.Queue()
        self.batches = self.pages = 0  # how well requests are being batched, for /healthz
        self.seconds_per_page: float | None = None  # recent batches' time per page
        self._thread = threading.Thread(target=self._serve, name="scancap-batcher", daemon=True)
        self._thread.start()

    def analyze(self, items: Items) -> list[Result]:
        """The request's Results, once the batch holding its pages is finished."""
        future: Future[list[Result]] = Future()
        self._queue.put((items, future))
        return future.result()

    def close(self) -> None:
        """Finish what is queued, then stop the scheduler thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _gather(self, wait_for_first: bool) -> tuple[list[tuple[Items, Future]], bool]:
        """Requests waiting now: up to `max_items` pages, or `max_wait` after the first.

        Blocks for the first request only when nothing else is in flight. Returns the requests
        and whether the service is stopping.
        """
        requests: list[tuple[Items, Future]] = []
        pages, deadline = 0, None
        while pages < self.max_items:
            if deadline is None:
                timeout = None if wait_for_first else self.max_wait
            else:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
            try:
                request = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if request is _STOP:
                return requests, True
            requests.append(request)
            pages += len(request[0])
            deadline = deadline or time.monotonic() + self.max_wait
        return requests, False

    def _serve(self) -> None:
        """Start each gathered batch, then finish the one before it (their work overlaps)."""
        pending: tuple[list[tuple[Items, Future]], Batch, float] | None = None
        stopping = False
        while not stopping or pending is not None:
            requests, stop = ([], True) if stopping else self._gather(pending is None)
            stopping = stopping or stop
            started = self._start(requests) if requests else None
            if pending is not None:
                self._finish(*pending)
            pending = started

    def _start(self, requests: list[tuple[Items, Future]]) -> tuple[list, Batch, float] | None:
        """The batch started, with the seconds starting it took."""
        items = [item for request_items, _ in requests for item in request_items]
        self.batches, self.pages = self.batches + 1, self.pages + len(items)
        start = time.perf_counter()
        try:
            return requests, self.pipeline.start_batch(items), time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 - the waiting requests get the error
            for _, future in requests:
                future.set_exception(error)
            return None

    def _finish(self, requests: list[tuple[Items, Future]], batch: Batch, started: float) -> None:
        start = time.perf_counter()
        try:
            self.pipeline.finish_batch(batch)
        except Exception as error:  # noqa: BLE001 - the waiting requests get the error
            for _, future in requests:
                future.set_exception(error)
            return
        for request_items, future in requests:
            future.set_result([result for result, _ in request_items])
        self._time(len(batch.items), time.perf_counter() - start + started)

    def _time(self, pages: int, seconds: float) -> None:
        """The scheduler's own seconds per page (classifying, waiting for restoration,
        captioning), smoothed over batches: the service's Retry-After is estimated from it."""
        sample = seconds / max(1, pages)
        previous = self.seconds_per_page
        self.seconds_per_page = sample if previous is None else 0.8 * previous + 0.2 * sample
