"""Invented objects in captions (CHAIR) on hand-labelled photos, and the choice of the object
rule that grounding ships (`scancap.caption.grounding.ObjectRule`).

Stages (`python -m scancap_lab.caption.objects_study STAGE`):
- `select`: on the select half (COCO-mini and the out-of-domain photos, pooled) and Flickr8k
  dev, every candidate threshold of the COCO detector, then the groups without a detector that
  are forbidden; writes the choice to `reports/captioning_objects/selection.json`.
- `select-learnt`, `select-recall`: the second to fourth candidates (evidence learnt from
  Flickr8k train); the chosen one is written by `scancap train objects`.
- `select-fallback`: the score below which a caption is built from evidence.
- `write`: that score into `models/captioner/grounding.json` (only with `--write`).
- `report`: every decoding on the report half, once; writes `reports/captioning_objects.md`.

The rule of the choice is in `reports/captioning_experiments.md` ("Object words"), written
before any candidate ran.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from scancap.caption.data import load_captions, load_split, references
from scancap.caption.grounding import FALLBACK, GROUNDING_FILE, OWN_DETECTORS, ObjectRule
from scancap.caption.metrics import caption_scores, chair, group_precision
from scancap.caption.model import MODEL_DIR, Captioner
from scancap.caption.objects import OBJECT_GROUPS
from scancap.caption.train_objects import (
    ObjectEvidence,
    cached_inputs,
    decide_unsupported,
    decoding_inputs,
    train_inputs,
    train_objects,
)
from scancap.io import load_image
from scancap.paths import cache_dir, data_dir
from scancap_lab.paths import LABELS, REPORTS

OBJECT_LABELS = LABELS / "objects.csv"
STUDY = REPORTS / "captioning_objects"
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
DEV_SLACK = 0.02  # a candidate may cost at most this much Flickr8k dev CIDEr-D
TIE = 0.005  # CHAIR_s within this of the best counts as a tie (the higher threshold wins)
OLD_PHOTO_SOURCES = ("deoldify_old_photos", "bop_old_photos")
BOOTSTRAP = 2000
BEAM = 3


@dataclass
class Photos:
    """Labelled photos and what decoding reads of them (cached)."""

    frame: pd.DataFrame  # path, objects (set), part, set
    grids: np.ndarray
    lite0: np.ndarray
    grain: np.ndarray
    objects: np.ndarray  # (N, 80) best score per COCO class


def photo_set(path: str) -> str:
    if path.startswith("coco_mini/"):
        return "COCO-mini"
    if any(source in path for source in OLD_PHOTO_SOURCES):
        return "old photographs"
    return "landscapes and cities"


def load_object_labels(path: Path = OBJECT_LABELS) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False)
    frame["objects"] = frame["objects"].map(lambda s: frozenset(filter(None, s.split(";"))))
    frame["set"] = frame["path"].map(photo_set)
    return frame


def features(captioner: Captioner, paths: list[Path], name: str) -> dict[str, np.ndarray]:
    """Grids, Lite0 grids, grain and COCO class scores of image files, cached by their list
    (what `scancap train objects` decodes labelled photos with)."""
    return cached_inputs(name, paths, partial(decoding_inputs, captioner))


def labelled_photos(captioner: Captioner, data: Path) -> Photos:
    frame = load_object_labels()
    arrays = features(captioner, [data / p for p in frame["path"]], "labelled")
    return Photos(frame, **arrays)


def half(photos: Photos, part: str) -> Photos:
    """The photos of one half (`select` or `report`)."""
    keep = photos.frame["part"].eq(part).to_numpy()
    arrays = (getattr(photos, k)[keep] for k in ("grids", "lite0", "grain", "objects"))
    return Photos(photos.frame[keep].reset_index(drop=True), *arrays)


def decode(
    captioner: Captioner, arrays: Photos | dict, rule: ObjectRule | None, ground: bool = True
) -> list[str]:
    """Captions under an object rule (None: the shipped grounding without one)."""
    captioner.grounding.objects = rule
    return [c.text for c in described(captioner, arrays, ground=ground)]


def described(
    captioner: Captioner,
    arrays: Photos | dict,
    detections: list | None = None,
    ground: bool = True,
) -> list:
    """The captions (with scores) of cached photos under the captioner's grounding as it is."""
    get = (lambda k: getattr(arrays, k)) if isinstance(arrays, Photos) else arrays.__getitem__
    return captioner.describe(
        np.asarray(get("grids"), np.float32), BEAM, ground=ground,
        lite0=np.asarray(get("lite0"), np.float32), grain=list(get("grain")),
        objects=get("objects"), detections=detections,
    )  # fmt: skip


def detections_of(captioner: Captioner, paths: list[Path], name: str) -> list:
    """Each photo's COCO detections (cached as JSON)."""
    from scancap.caption.detector import Detection

    key = hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()[:16]
    file = cache_dir() / "objects_study" / f"{name}-detections-{key}.json"
    if not file.exists():
        found = [captioner.detect([load_image(p)])[0][0] for p in paths]
        file.write_text(json.dumps([[d.to_json() for d in items] for items in found]))
    return [[Detection(d["label"], d["score"], tuple(d["box"])) for d in items]
            for items in json.loads(file.read_text())]  # fmt: skip


def select_fallback(captioner: Captioner, data: Path) -> dict:
    """The fallback score on the select half and dev (rule: "Object words, the fallback"),
    with the shipped grounding (its object rule included)."""
    grounding = captioner.grounding
    photos = labelled_photos(captioner, data)
    subset = half(photos, "select")
    labels = list(subset.frame["objects"])
    found = detections_of(captioner, [data / p for p in subset.frame["path"]], "select")
    dev, refs = dev_data(captioner, data)
    dev_paths = [data / "flickr8k" / "images" / name for name in refs]
    dev_found = detections_of(captioner, dev_paths, "flickr8k-dev")
    grounding.fallback_score = None
    scores = [c.score for c in described(captioner, dev, dev_found)]
    cutoffs = {"none": None, **{f"p{q}": float(np.percentile(scores, q)) for q in (5, 10, 20)}}
    rows = []
    for name, cutoff in cutoffs.items():
        grounding.fallback_score = cutoff
        chosen = described(captioner, subset, found)
        on_dev = described(captioner, dev, dev_found)
        cider, _ = caption_scores(refs, dict(zip(refs, [c.text for c in on_dev], strict=True)),
                                  meteor=False)  # fmt: skip
        rows.append({"candidate": name, "score": cutoff, "dev CIDEr-D": float(cider["CIDEr-D"]),
                     "fires on select": float(np.mean([c.from_evidence for c in chosen])),
                     "fires on dev": float(np.mean([c.from_evidence for c in on_dev])),
                     **chair([c.text for c in chosen], labels)})  # fmt: skip
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    allowed = table[table["dev CIDEr-D"] >= table["dev CIDEr-D"][0] - 0.01]
    ties = allowed[allowed["CHAIR_s"] <= allowed["CHAIR_s"].min() + TIE]
    choice = ties.sort_values("fires on select").iloc[0]
    record = {"chosen": choice["candidate"], "score": choice["score"],
              "candidates": table.to_dict("records")}  # fmt: skip
    (STUDY / "selection_fallback.json").write_text(json.dumps(record, indent=1))
    return record


def dev_data(captioner: Captioner, data: Path) -> tuple[dict[str, np.ndarray], dict]:
    images = load_split("dev", data)
    refs = references(load_captions(data), images)
    paths = [data / "flickr8k" / "images" / name for name in images]
    return features(captioner, paths, "flickr8k-dev"), refs


def dev_cider(captioner: Captioner, dev: dict, refs: dict, rule: ObjectRule | None) -> float:
    texts = decode(captioner, dev, rule)
    scores, _ = caption_scores(refs, dict(zip(refs, texts, strict=True)), meteor=False)
    return float(scores["CIDEr-D"])


def uniform_rule(threshold: float, unsupported: frozenset[str] = frozenset()) -> ObjectRule:
    """The first candidate: one COCO threshold for every COCO-backed group."""
    groups = [g.name for g in OBJECT_GROUPS.values() if g.coco and g.name not in OWN_DETECTORS]
    return ObjectRule(dict.fromkeys(groups, threshold), unsupported)


def select(captioner: Captioner, data: Path) -> dict:
    """The rule's choice on the select half (see the module's docstring)."""
    photos = labelled_photos(captioner, data)
    dev, refs = dev_data(captioner, data)
    subset = half(photos, "select")
    labels = subset.frame["objects"]
    baseline_dev = dev_cider(captioner, dev, refs, None)
    rows = [{"threshold": None, "dev CIDEr-D": baseline_dev,
             **chair(decode(captioner, subset, None), labels)}]  # fmt: skip
    for threshold in THRESHOLDS:
        rule = uniform_rule(threshold)
        row = chair(decode(captioner, subset, rule), labels)
        rows.append({"threshold": threshold, "dev CIDEr-D": dev_cider(captioner, dev, refs, rule),
                     **row})  # fmt: skip
        print(rows[-1], flush=True)
    candidates = pd.DataFrame(rows)
    allowed = candidates[candidates["threshold"].notna()
                         & (candidates["dev CIDEr-D"] >= baseline_dev - DEV_SLACK)]  # fmt: skip
    best = allowed["CHAIR_s"].min()
    chosen = float(allowed[allowed["CHAIR_s"] <= best + TIE]["threshold"].max())

    no_detector = {g.name for g in OBJECT_GROUPS.values() if not g.coco} - OWN_DETECTORS
    unsupported, rounds = decide_unsupported(
        lambda rule: decode(captioner, subset, rule), list(labels),
        lambda forbidden: uniform_rule(chosen, forbidden), no_detector,
    )  # fmt: skip
    rule = uniform_rule(chosen, frozenset(unsupported))
    final = decode(captioner, subset, rule)
    record = {
        "threshold": chosen,
        "unsupported": sorted(unsupported),
        "baseline dev CIDEr-D": baseline_dev,
        "final select": chair(final, labels),
        "final dev CIDEr-D": dev_cider(captioner, dev, refs, rule),
        "candidates": candidates.to_dict("records"),
        "rounds": rounds,
    }
    STUDY.mkdir(parents=True, exist_ok=True)
    (STUDY / "selection.json").write_text(json.dumps(record, indent=1))
    return record


def train_features(captioner: Captioner, data: Path) -> tuple[dict[str, np.ndarray], list]:
    """Flickr8k train's pooled MobileNetV2 grids and COCO class scores (cached, as
    `scancap train objects` caches them), and each photo's references."""
    images = load_split("train", data)
    refs = references(load_captions(data), images)
    paths = [data / "flickr8k" / "images" / name for name in images]
    arrays = cached_inputs("flickr8k-train", paths, partial(train_inputs, captioner))
    return arrays, [refs[name] for name in images]


def learnt_evidence(captioner: Captioner, data: Path) -> ObjectEvidence:
    """The second candidate's evidence (`scancap.caption.train_objects`), its presence
    detectors added to the captioner's grounding."""
    arrays, refs = train_features(captioner, data)
    grounding = captioner.grounding
    evidence = train_objects(
        refs, arrays["pooled"], arrays["objects"], keep=list(grounding.detectors)
    )
    grounding.detectors = {**grounding.detectors, **evidence.detectors}
    return evidence


def select_learnt(captioner: Captioner, data: Path) -> dict:
    """The second candidate on the select half and dev (rule: "Object words, second
    candidate"): learnt evidence, then the groups with none decided by their precision."""
    evidence = learnt_evidence(captioner, data)
    subset = half(labelled_photos(captioner, data), "select")
    labels = subset.frame["objects"]
    dev, refs = dev_data(captioner, data)
    decided = set(evidence.thresholds) | set(captioner.grounding.detectors)
    no_evidence = set(OBJECT_GROUPS) - decided - {"person", "other animal"}
    unsupported, rounds = decide_unsupported(
        lambda rule: decode(captioner, subset, rule), list(labels), evidence.rule, no_evidence
    )
    rule = evidence.rule(frozenset(unsupported))
    final = decode(captioner, subset, rule)
    record = {
        "thresholds": rule.thresholds,
        "detectors": {name: d.threshold for name, d in evidence.detectors.items()},
        "positives": evidence.positives,
        "unsupported": sorted(unsupported),
        "no evidence": sorted(no_evidence),
        "final select": chair(final, labels),
        "final dev CIDEr-D": dev_cider(captioner, dev, refs, rule),
        "select precision": group_precision(final, labels).to_dict("records"),
        "rounds": rounds,
    }
    (STUDY / "selection_learnt.json").write_text(json.dumps(record, indent=1))
    return record


RECALLS = (0.9, 0.8, 0.7, 0.6, 0.5)


def select_recall(captioner: Captioner, data: Path) -> dict:
    """The fourth candidate (rule: "Object words, fourth candidate"): one recall for every
    group's threshold, the lowest select CHAIR_s under the dev constraint."""
    arrays, train_refs = train_features(captioner, data)
    grounding = captioner.grounding
    base = dict(grounding.detectors)
    subset = half(labelled_photos(captioner, data), "select")
    labels = list(subset.frame["objects"])
    dev, refs = dev_data(captioner, data)
    baseline_dev = dev_cider(captioner, dev, refs, None)
    rows = []
    for recall in RECALLS:
        evidence = train_objects(train_refs, arrays["pooled"], arrays["objects"],
                                 keep=list(base), recall=recall)  # fmt: skip
        grounding.detectors = {**base, **evidence.detectors}
        no_evidence = set(OBJECT_GROUPS) - set(evidence.thresholds) - set(grounding.detectors)
        unsupported, _ = decide_unsupported(
            lambda rule: decode(captioner, subset, rule), labels, evidence.rule,
            no_evidence - OWN_DETECTORS,
        )  # fmt: skip
        rule = evidence.rule(unsupported)
        rows.append({"recall": recall, "dev CIDEr-D": dev_cider(captioner, dev, refs, rule),
                     "unsupported": sorted(unsupported),
                     **chair(decode(captioner, subset, rule), labels)})  # fmt: skip
        print({k: v for k, v in rows[-1].items() if k != "unsupported"}, flush=True)
    table = pd.DataFrame(rows)
    allowed = table[table["dev CIDEr-D"] >= baseline_dev - DEV_SLACK]
    ties = allowed[allowed["CHAIR_s"] <= allowed["CHAIR_s"].min() + TIE]
    chosen = ties.sort_values("recall", ascending=False).iloc[0]
    record = {
        "recall": float(chosen["recall"]),
        "unsupported": chosen["unsupported"],
        "baseline dev CIDEr-D": baseline_dev,
        "candidates": table.to_dict("records"),
    }
    (STUDY / "selection_recall.json").write_text(json.dumps(record, indent=1))
    return record


def write_fallback(model_dir: Path = MODEL_DIR) -> Path:
    """The fallback score chosen by `select-fallback` into the captioner's grounding.json (the
    object rule itself is written by `scancap train objects`)."""
    record = json.loads((STUDY / "selection_fallback.json").read_text())
    path = Path(model_dir) / GROUNDING_FILE
    grounding = json.loads(path.read_text())
    grounding[FALLBACK] = record["score"]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(grounding))
    temporary.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stages = ["select", "select-learnt", "select-recall", "select-fallback", "write", "report"]
    parser.add_argument("stage", choices=stages)
    parser.add_argument("--write", action="store_true", help="let `write` change the model")
    args = parser.parse_args()
    data = data_dir()
    if args.stage == "write":
        if not args.write:
            parser.error("write changes models/captioner/grounding.json: pass --write")
        print(write_fallback())
        return
    captioner = Captioner.load()
    if args.stage == "select":
        print(json.dumps(select(captioner, data), indent=1))
    elif args.stage == "select-learnt":
        print(json.dumps(select_learnt(captioner, data), indent=1))
    elif args.stage == "select-recall":
        print(json.dumps(select_recall(captioner, data), indent=1))
    elif args.stage == "select-fallback":
        print(json.dumps(select_fallback(captioner, data), indent=1))
    else:
        from scancap_lab.caption.objects_report import write_report

        print(write_report(captioner, data))


if __name__ == "__main__":
    main()
