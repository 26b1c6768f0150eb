"""Rewrite a committed report from the datasets: `python -m scancap_lab.reports NAME`.

    python -m scancap_lab.reports classification [--model DIR] [--runs DIR] [--report FILE]
    python -m scancap_lab.reports captioning [--model DIR] [--report FILE]
    (both: [--data DIR] [--cache DIR] [--limit N] [--quiet])

`classification` re-evaluates the shipped classifier on its persisted split and summarises the
training-run records of `scancap train classifier --compare DIR` (read from --runs);
`captioning` scores the shipped captioner on Flickr8k dev, measures it, and rewrites its model
card too. `make report-classification` and `make report-captioning` run them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from scancap.cli.options import add_data_options, data_options
from scancap_lab.paths import REPORTS

RUNS = REPORTS / "classification_runs"  # where `--compare` should write for this report
CLASSIFIER_LIMIT = "at most N images per label and split (smoke tests)"
CAPTIONER_LIMIT = "only the first N train and N dev images (smoke tests)"


def classification(args: argparse.Namespace) -> Path:
    from scancap_lab.classify.evaluate import write_report

    return write_report(
        model_dir=args.model, report=args.report, runs_dir=args.runs, **data_options(args)
    )


def captioning(args: argparse.Namespace) -> Path:
    from scancap_lab.caption.evaluate import write_report

    return write_report(model_dir=args.model, report=args.report, **data_options(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scancap_lab.reports",
        description="Evaluate a shipped model on its datasets and rewrite its report.",
    )
    reports = parser.add_subparsers(dest="name", required=True)
    report = reports.add_parser(
        "classification",
        help="rewrite reports/classification.md",
        description="Evaluate the shipped classifier on its persisted split and rewrite the "
        "report and its figures.",
    )
    report.add_argument("--model", type=Path, help="classifier folder (default: models/classifier)")
    report.add_argument(
        "--runs", type=Path, default=RUNS,
        help=f"training-run records (scancap train classifier --compare; default {RUNS})",
    )  # fmt: skip
    report.add_argument(
        "--report", type=Path, default=REPORTS / "classification.md", help="report to write"
    )
    add_data_options(report, CLASSIFIER_LIMIT)
    report.set_defaults(write=classification)

    report = reports.add_parser(
        "captioning",
        help="rewrite reports/captioning.md and the captioner's model card",
        description="Caption Flickr8k dev (greedy and beam), score it, measure speed and "
        "memory, and rewrite the report and its figures.",
    )
    report.add_argument("--model", type=Path, help="captioner folder (default: models/captioner)")
    report.add_argument(
        "--report", type=Path, default=REPORTS / "captioning.md", help="report to write"
    )
    add_data_options(report, CAPTIONER_LIMIT)
    report.set_defaults(write=captioning)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = args.write(args)
    if not args.quiet:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
