"""Argument types and option groups shared by the `scancap` subcommands, and `UsageError`."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from scancap.io import DEFAULT_MAX_PIXELS
from scancap.pages import DEFAULT_DPI
from scancap.paths import models_dir

RUNS_DIR = Path("runs")  # where training writes unless told otherwise (from the current folder)


class UsageError(ValueError):
    """A command-line request scancap refuses: `main` prints it on one line, exit status 2."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value:g}")
    return value


def restore_strength(text: str) -> float:
    value = float(text)
    if not 0 < value <= 4:
        raise argparse.ArgumentTypeError(f"must be in (0, 4], got {value:g}")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--config and --models, of the commands that run the whole pipeline (run, serve)."""
    parser.add_argument(
        "--config", type=Path, help="TOML file with a [run] table (flags override it)"
    )
    add_models_option(parser)


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """--models, the same in every command that uses the shipped models."""
    parser.add_argument(
        "--models", type=Path, help="folder holding classifier/ and captioner/ (default: models/)"
    )


def model_folder(args: argparse.Namespace, name: str) -> Path | None:
    """The folder of one model under --models; None: the shipped one."""
    return args.models / name if args.models else None


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")


def add_max_pixels(
    parser: argparse.ArgumentParser, default: int | None = DEFAULT_MAX_PIXELS
) -> None:
    """None as default lets a config file decide (then DEFAULT_MAX_PIXELS)."""
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=default,
        help=f"refuse images larger than this many pixels (default {DEFAULT_MAX_PIXELS:,})",
    )


def add_batch_options(
    parser: argparse.ArgumentParser,
    default: int | None = DEFAULT_MAX_PIXELS,
    dpi_default: int | None = DEFAULT_DPI,
) -> None:
    """--max-pixels, --pdf-dpi and --quiet, which every command reading images has (None as
    a default lets a config file decide)."""
    add_max_pixels(parser, default)
    parser.add_argument(
        "--pdf-dpi",
        type=positive_int,
        default=dpi_default,
        help=f"resolution PDF pages are rendered at (default {DEFAULT_DPI})",
    )
    add_quiet(parser)


def add_batch_size(parser: argparse.ArgumentParser) -> None:
    """--batch-size of the commands that run one model on images (classify, caption)."""
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (32)")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def add_data_options(parser: argparse.ArgumentParser, limit_help: str) -> None:
    """Where training reads data and caches features (and the lab's report writers)."""
    parser.add_argument("--data", type=Path, help="datasets folder (default: $SCANCAP_DATA)")
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: cache/)")
    parser.add_argument("--limit", type=positive_int, help=limit_help)
    add_quiet(parser)


def add_training_output(parser: argparse.ArgumentParser, name: str) -> None:
    """--out and --replace-shipped of a training command: never the shipped model by default."""
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default: runs/<today>-{name}/; a folder under models/ needs "
        "--replace-shipped)",
    )
    parser.add_argument(
        "--replace-shipped",
        action="store_true",
        help="allow --out to be under models/, overwriting the model scancap ships",
    )
    parser.set_defaults(output_name=name)


def training_output(args: argparse.Namespace) -> Path:
    """Where a training command writes: --out, or a dated folder under runs/; refuses the
    shipped models' folder unless --replace-shipped was given."""
    out = args.out or RUNS_DIR / f"{date.today().isoformat()}-{args.output_name}"
    if out.resolve().is_relative_to(models_dir().resolve()) and not args.replace_shipped:
        raise UsageError(
            f"{out} is a shipped model folder: pass --replace-shipped to overwrite it, or "
            "choose another --out"
        )
    return out


def data_options(args: argparse.Namespace) -> dict:
    """The options of `add_data_options` as the keyword arguments of training and the lab's
    report writers."""
    return {
        "data": args.data,
        "cache_dir": args.cache,
        "limit": args.limit,
        "progress": not args.quiet,
    }
