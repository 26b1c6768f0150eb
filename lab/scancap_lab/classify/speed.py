"""End-to-end classification speed: decode, resize, frozen backbone and head, batched.

Run as its own process (`python -m scancap_lab.classify.speed FILE...`) so that its peak memory is
the classifier's alone, not that of the report that asks for it; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scancap.memory import peak_rss_mb


def measure(paths: list[Path], model_dir: Path | None, batch_size: int, repeats: int) -> dict:
    """Images per second over `repeats` passes on `paths` (after one warm-up batch)."""
    from scancap.classify.model import Classifier

    start = time.perf_counter()
    classifier = Classifier.load(model_dir)
    load_seconds = time.perf_counter() - start
    list(classifier.predict_files(paths[:batch_size], batch_size))  # warm-up: builds the graph
    start = time.perf_counter()
    for _ in range(repeats):
        for _, result in classifier.predict_files(paths, batch_size):
            if isinstance(result, Exception):
                raise result
    seconds = time.perf_counter() - start
    images = len(paths) * repeats
    return {
        "images": images,
        "batch_size": batch_size,
        "seconds": seconds,
        "images_per_second": images / seconds,
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="image files")
    parser.add_argument("--model", type=Path, help="classifier folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.paths, args.model, args.batch_size, args.repeats)))


if __name__ == "__main__":
    main()
