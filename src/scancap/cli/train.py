"""`scancap train classifier|captioner|captioner-ensemble|grounding|objects`: reproduce a
model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from scancap.cli.options import (
    add_data_options,
    add_training_output,
    data_options,
    positive_int,
    training_output,
)
from scancap.io import IMAGE_SUFFIXES

# Each target's --limit, for smoke tests.
CLASSIFIER_LIMIT = "at most N images per label and split (smoke tests)"
CAPTIONER_LIMIT = "only the first N train and N dev images (smoke tests)"
GROUNDING_LIMIT = "smoke test: the first N Flickr8k train photos, N per source, N per label set"
OBJECTS_LIMIT = "smoke test: the first N Flickr8k train photos and N labelled photos"
# The training modules (TensorFlow) are imported by the handlers, so `scancap --help` and the
# other commands do not pay for them.


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from scancap.classify.train import train_classifier

    out = training_output(args)
    record = train_classifier(
        out=out, epochs=args.epochs, runs_dir=args.compare, **data_options(args)
    )
    if not args.quiet:
        test = record.metrics["test"]
        print(
            f"saved to {out}: test accuracy {test['accuracy'][0]:.4f}, "
            f"ROC-AUC {test['roc_auc'][0]:.4f}, threshold {record.calibration['threshold']:.3f}"
        )
    return 0


def cmd_train_captioner(args: argparse.Namespace) -> int:
    from scancap.caption.train import train_captioner

    out = training_output(args)
    record = train_captioner(
        out=out,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        init=args.init,
        scst_epochs=args.scst_epochs,
        seed=args.seed,
        **data_options(args),
    )
    if record is None:
        print("stopped at the time budget: run the same command again to resume", file=sys.stderr)
        return 3
    if not args.quiet:
        best = record["best_dev_greedy"]
        print(
            f"saved to {out}: cross-entropy best epoch {record['best_epoch']}/"
            f"{record['epochs_run']}, dev greedy BLEU-4 {best['BLEU-4']:.4f}, "
            f"CIDEr-D {best['CIDEr-D']:.4f}"
        )
        if "scst" in record:
            scst, after = record["scst"], record["scst"]["dev_beam3_best"]
            print(
                f"self-critical best epoch {scst['best_epoch']}/{scst['epochs_run']}, dev beam-3 "
                f"BLEU-4 {after['BLEU-4']:.4f}, CIDEr-D {after['CIDEr-D']:.4f}"
            )
    return 0


def cmd_train_ensemble(args: argparse.Namespace) -> int:
    from scancap.caption.train import build_ensemble, chosen_row

    out = training_output(args)
    decoding = build_ensemble(args.members, out, **data_options(args))
    if not args.quiet:
        best = chosen_row(decoding)
        print(
            f"saved {len(args.members)} members to {out}: length exponent "
            f"{decoding['length_penalty']}, dev beam-{decoding['beam']} BLEU-4 "
            f"{best['BLEU-4']:.4f}, CIDEr-D {best['CIDEr-D']:.4f}"
        )
    return 0


def cmd_train_grounding(args: argparse.Namespace) -> int:
    from scancap.caption.train_grounding import train_grounding

    out = training_output(args)
    near = images_in(args.exclude_near) if args.exclude_near else []
    grounding = train_grounding(args.labels, args.model, exclude_near=near, **data_options(args))
    out.mkdir(parents=True, exist_ok=True)
    grounding.save(out)
    if not args.quiet:
        thresholds = ", ".join(
            f"p({name}) >= {d.threshold:.3f}"
            + (f" ({d.grainy_threshold:.3f} if grainy)" if d.grainy_threshold is not None else "")
            for name, d in grounding.detectors.items()
        )
        print(f"saved {out / 'grounding.json'}: {thresholds}")
        if grounding.reads_grain:
            print(f"a photo is grainy from σ̂ = {grounding.grain_level:.2f} (0-255)")
    return 0


def cmd_train_objects(args: argparse.Namespace) -> int:
    from scancap.caption.objects import OBJECT_GROUPS
    from scancap.caption.train_objects import train_object_rule

    out = training_output(args)
    grounding = train_object_rule(args.labels, args.model, **data_options(args))
    out.mkdir(parents=True, exist_ok=True)
    grounding.save(out)
    if not args.quiet:
        rule = grounding.objects
        groups = {g.name for g in OBJECT_GROUPS.values() if not g.coco} - {"person"}
        scenes = [name for name in grounding.detectors if name in groups]
        print(
            f"saved {out / 'grounding.json'}: {len(rule.thresholds)} object groups held to the "
            f"COCO detector, presence detectors for {', '.join(scenes) or 'none'}; without "
            f"evidence and forbidden: {', '.join(sorted(rule.unsupported)) or 'none'}"
        )
    return 0


def images_in(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def add_classifier_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the recipe's)")
    parser.add_argument(
        "--compare", type=Path, metavar="DIR",
        help="also train the compared models and ablations, saving their records into DIR",
    )  # fmt: skip


def add_captioner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epochs", type=positive_int, help="maximum cross-entropy epochs (default: the recipe's)"
    )
    parser.add_argument(
        "--scst-epochs",
        type=int,
        help="maximum self-critical (CIDEr-D) epochs after them; 0 skips that phase "
        "(default: the recipe's)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="skip the cross-entropy phase: fine-tune the decoder in this folder instead",
    )
    parser.add_argument(
        "--seed", type=int, help="random seed of both phases (default: the recipe's, 42)"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop after the last epoch that fits (exit code 3); the same command resumes",
    )


def add_ensemble_members(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("members", nargs="+", type=Path, help="trained decoder folders")


def add_grounding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels", type=Path, required=True,
        help="hand-labelled photos (CSV: path, part, person, animal, ...) whose select half "
        "sets the thresholds (the project's: benchmarks/labels/caption_ood.csv)",
    )  # fmt: skip
    parser.add_argument(
        "--exclude-near", type=Path,
        help="folder of photos whose near copies are not trained on (photos a test judges)",
    )  # fmt: skip
    parser.add_argument(
        "--model", type=Path, help="captioner folder whose backbone is used (models/captioner)"
    )


def add_objects_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels", type=Path, required=True,
        help="photos with their visible objects (CSV: path, objects separated by ';', part) "
        "whose select half decides the words without evidence (the project's: "
        "benchmarks/labels/objects.csv)",
    )  # fmt: skip
    parser.add_argument(
        "--model", type=Path, help="captioner folder whose grounding is extended (models/captioner)"
    )


def add_target(
    targets: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    add_options: Callable[[argparse.ArgumentParser], None],
    limit_help: str,
    **texts: str,
) -> None:
    """One training target: --out and --replace-shipped, its own options, then where its data
    and feature cache are (--data, --cache, --limit, --quiet)."""
    parser = targets.add_parser(name, **texts)
    add_training_output(parser, name)
    add_options(parser)
    add_data_options(parser, limit_help)
    parser.set_defaults(handler=handler)


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model from the datasets")
    targets = train.add_subparsers(dest="target", required=True)
    add_target(
        targets, "classifier", cmd_train_classifier, add_classifier_options, CLASSIFIER_LIMIT,
        help="train the photo-or-not classifier",
        description="Split the doctype data set (seed 42), cache backbone features and train "
        "the shipped classifier into --out, with its calibration and model card.",
    )  # fmt: skip
    add_target(
        targets, "captioner", cmd_train_captioner, add_captioner_options, CAPTIONER_LIMIT,
        help="train the captioner on Flickr8k",
        description="Cache backbone features of Flickr8k train and dev, train the attention "
        "decoder on train by teacher forcing, then fine-tune it on its own samples with "
        "self-critical sequence training (reward: CIDEr-D); keep the epoch with the best dev "
        "CIDEr-D and save it into --out.",
    )  # fmt: skip
    add_target(
        targets, "captioner-ensemble", cmd_train_ensemble, add_ensemble_members, CAPTIONER_LIMIT,
        help="combine trained captioners into one",
        description="Copy trained decoders (folders written by `scancap train captioner`, same "
        "vocabulary) into --out as the members of one captioner that averages their next-word "
        "probabilities, and choose its beam search's length exponent on Flickr8k dev.",
    )  # fmt: skip
    add_target(
        targets, "grounding", cmd_train_grounding, add_grounding_options, GROUNDING_LIMIT,
        help="fit the captioner's person and animal detectors",
        description="Fit the detectors that keep captions from naming a person or an animal "
        "the photo does not show (Flickr8k train captions, tf_flowers photos), and set their "
        "thresholds on the select half of --labels. Writes grounding.json into --out; a "
        "captioner folder holding it captions with grounding.",
    )  # fmt: skip
    add_target(
        targets, "objects", cmd_train_objects, add_objects_options, OBJECTS_LIMIT,
        help="learn which object words each photo supports",
        description="Learn the evidence for every object word from Flickr8k train (COCO "
        "detector thresholds, presence detectors for scene words such as grass or snow), "
        "decide the words without evidence on the select half of --labels, and write the "
        "captioner's grounding.json, with the object rule, into --out.",
    )  # fmt: skip
