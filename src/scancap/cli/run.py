"""`scancap run`: the product's daily command (its options are shared with `scancap serve`)."""

from __future__ import annotations

import argparse
import sys

from scancap.cli.options import (
    UsageError,
    add_batch_options,
    add_inputs,
    add_model_options,
    positive_float,
    positive_int,
    probability,
)
from scancap.config import RunConfig, load_config
from scancap.engines.storage import StorageError, is_remote, local_path, shown
from scancap.pages import require_inputs
from scancap.restore.auto import MODES

DEFAULTS = RunConfig()


def run_config(args: argparse.Namespace) -> RunConfig:
    """Defaults, then --config's [run] table, then the flags that were given."""
    # Every RunConfig field has a flag of the same name; None means "not given".
    flags = {name: getattr(args, name) for name in RunConfig.model_fields}
    return load_config(args.config, **flags)


def cmd_run(args: argparse.Namespace) -> int:
    from scancap.engines import local

    config = run_config(args)  # a bad setting: ConfigError, exit status 2
    uris = [item for item in [*args.inputs, args.out] if is_remote(item)]
    paths = [local_path(item) for item in args.inputs if not is_remote(item)]
    if len(paths) == len(args.inputs):
        require_inputs(paths)  # before the models load (URIs are listed by the Ray engine)
    if args.engine == "ray":
        return _run_on_ray(args, config)
    if args.address:
        raise UsageError("--address is for --engine ray")
    if uris:
        raise UsageError(f"{shown(uris[0])}: inputs and outputs given as URIs need --engine ray")
    try:
        summary = local.run(paths, local_path(args.out), config, args.models, force=args.force,
                            progress=not args.quiet)  # fmt: skip
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished images are kept in the ledger; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 130
    if not args.quiet:
        print(summary.text())
    return 1 if summary.errors else 0


def _run_on_ray(args: argparse.Namespace, config: RunConfig) -> int:
    """The same run on Ray Data (the `ray` extra), locally or on the cluster at --address."""
    from scancap.engines import ray

    ray.require_ray()
    try:
        summary = ray.run(args.inputs, args.out, config, args.models, force=args.force,
                          progress=not args.quiet, address=args.address)  # fmt: skip
    except (ray.RayConnectError, StorageError) as error:
        print(f"scancap run: {error}", file=sys.stderr)
        return 2
    except (ray.RayJobError, KeyboardInterrupt) as error:
        reason = str(error) if isinstance(error, ray.RayJobError) else "interrupted"
        print(f"\n{reason}: finished batches are kept under {shown(args.out, 'parts')}; run "
              f"the same command again to resume (Ray's own log: {shown(args.out, 'ray.log')})",
              file=sys.stderr)  # fmt: skip
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    if not args.quiet:
        print(summary.text())
    return 1 if summary.errors else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="sort, restore and caption a folder of scans (the main command)",
        description="For each image: classify; photos are restored and captioned, others are "
        "sorted by subtype and left as they are, and text pages are read (OCR). OUT receives "
        "manifest.parquet/.csv, photos/<path>, texts/<path>.txt, captions.jsonl and "
        "report.html. A rerun skips finished images (--force redoes them); one bad file never "
        "stops the batch. Settings: defaults, then --config, then flags.",
    )
    add_inputs(run)
    run.add_argument(
        "--out", required=True,
        help="output folder; with --engine ray, inputs and OUT may also be URIs of any "
        "filesystem pyarrow opens (s3://bucket/scans, gs://…)",
    )  # fmt: skip
    run.add_argument(
        "--threshold",
        type=probability,
        help="p(photo) from which an image is a photo (default: the model card's)",
    )
    run.add_argument(
        "--restore-mode",
        choices=list(MODES),
        help=f"how photos are restored (default {DEFAULTS.restore_mode}; auto is better and "
        "about 10x slower)",
    )
    run.add_argument(
        "--restore-strength",
        type=float,
        help=f"scales the denoising σ, in (0, 4] (default {DEFAULTS.restore_strength})",
    )
    run.add_argument(
        "--beam", type=positive_int, help=f"caption beam size (default {DEFAULTS.beam})"
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        help=f"decoding threads and restoration processes (default {DEFAULTS.workers})",
    )
    run.add_argument(
        "--batch-size", type=positive_int, help=f"images per batch (default {DEFAULTS.batch_size})"
    )
    run.add_argument(
        "--copy-non-photos",
        action=argparse.BooleanOptionalAction,
        help="also copy non-photos, unmodified, to sorted/<subtype>/ (default off)",
    )
    run.add_argument(
        "--caption-txt",
        action=argparse.BooleanOptionalAction,
        help="write a .txt caption beside each restored photo (default off)",
    )
    run.add_argument(
        "--time-limit",
        type=float,
        help=f"seconds one image may spend in restoration (default {DEFAULTS.time_limit:g})",
    )
    run.add_argument(
        "--ocr", choices=["text", "all-non-photos", "off"],
        help="text: read text pages with Tesseract (default); all-non-photos: also "
        "schematics, sketches and paintings; off: read nothing",
    )  # fmt: skip
    run.add_argument(
        "--ocr-languages",
        help=f"Tesseract languages, '+'-separated (default {DEFAULTS.ocr_languages})",
    )
    run.add_argument(
        "--ocr-time-limit", type=positive_float,
        help=f"seconds of OCR per page (default {DEFAULTS.ocr_time_limit:g})",
    )  # fmt: skip
    run.add_argument(
        "--objects", action=argparse.BooleanOptionalAction,
        help="detect COCO objects in photos (their `objects` in the outputs) and let captions "
        "name only objects with evidence (default on); --no-objects is about twice as fast on "
        "photos, and its captions ground people and animals only",
    )  # fmt: skip
    run.add_argument(
        "--searchable-pdf", action=argparse.BooleanOptionalAction,
        help="also write searchable/<name>.pdf for each page read: the page under an "
        "invisible text layer (default off)",
    )  # fmt: skip
    run.add_argument(
        "--pixel-budget",
        type=positive_int,
        help=f"pixels decoded per batch and restored at once: bounds memory (default "
        f"{DEFAULTS.pixel_budget:,})",
    )
    run.add_argument("--force", action="store_true", help="reprocess images already finished")
    run.add_argument(
        "--engine", choices=["local", "ray"], default="local",
        help="local: this process (default); ray: Ray Data, locally or on a cluster "
        "(needs the ray extra)",
    )  # fmt: skip
    run.add_argument(
        "--address", help="with --engine ray: the cluster to join (host:port); else a local one"
    )
    add_batch_options(run, default=None, dpi_default=None)  # None: from --config, or default
    add_model_options(run)
    run.set_defaults(handler=cmd_run)
