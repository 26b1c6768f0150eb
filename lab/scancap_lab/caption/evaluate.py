"""`python -m scancap_lab.reports captioning`: dev metrics, figures, speed, memory, report and
model card.

Everything is measured on Flickr8k dev (the model was selected on it too: dev is the only labelled
split here, the standard test split being kept for an independent evaluation), with the COCO
caption metrics. Greedy and beam decoding are compared on the same model.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from scancap.caption.data import (
    FLICKR,
    build_feature_cache,
    load_captions,
    load_split,
    references,
)
from scancap.caption.metrics import caption_scores
from scancap.caption.model import (
    DECODING_FILE,
    MODEL_DIR,
    Caption,
    Captioner,
    member_dirs,
    read_decoding,
    tokenize,
)
from scancap.caption.scst import SCST_HISTORY_FILE
from scancap.caption.train import HISTORY_FILE, RECORD_FILE, chosen_row, machine
from scancap.caption.train_grounding import DOG_KEPT, grain_photos, lite0_photos
from scancap.io import atomic_write_text, load_image
from scancap.paths import data_dir
from scancap_lab.caption import figures as caption_figures
from scancap_lab.caption.evaluate_grounding import grounding_section, grounding_study
from scancap_lab.figures import save
from scancap_lab.paths import reports_dir

DECODINGS = {"greedy": 1, "beam 3": 3, "beam 5": 5}
SHIPPED_BEAM = 3
TARGETS = {"BLEU-4": 0.21, "CIDEr-D": 0.54, "METEOR": 0.20}  # grounding may cost a little
LATENCY_TARGET_MS, THROUGHPUT_TARGET = 150.0, 30.0
FIGURE_PREFIX = "captioning_"
STATISTICS = ["mean words", "distinct captions", "words used", "decoder images/s"]
MODEL_CARD = "MODEL_CARD.md"
# Words whose errors the failure analysis counts separately (colours, people, counts).
WORD_GROUPS = {
    "colour": {"black", "white", "brown", "red", "blue", "green", "yellow", "orange", "pink"},
    "person": {"man", "woman", "boy", "girl", "child", "people", "men", "women", "children"},
    "count": {"two", "three", "four", "group", "several", "many"},
}


@dataclass
class Evaluation:
    """Captions of every decoding, their scores, and per-image scores of the shipped decoding."""

    images: list[str]
    refs: dict[str, list[str]]
    captions: dict[str, list[Caption]]  # decoding name -> one Caption per image
    scores: pd.DataFrame  # decoding x metric
    per_image: pd.DataFrame  # image -> BLEU-4, ROUGE-L, CIDEr-D (shipped decoding)


def evaluate(
    captioner: Captioner,
    grids: np.ndarray,
    images: list[str],
    refs: dict[str, list[str]],
    decodings: dict[str, int] = DECODINGS,
    progress: bool = True,
    lite0: np.ndarray | None = None,
    grain: Sequence[float] | None = None,
    objects: tuple[list, np.ndarray] | None = None,
) -> Evaluation:
    """Decode `grids` with each beam width and score against the references (PTB tokenizer);
    `lite0`, `grain` and `objects` (each image's detections and best COCO class scores,
    `objects_photos`): what a grounding that reads them needs."""
    captions, rows, per_image = {}, {}, None
    for name, beam in decodings.items():
        started = time.perf_counter()
        found, best = objects or (None, None)
        captions[name] = captioner.describe(
            grids, beam=beam, lite0=lite0, grain=grain, objects=best, detections=found
        )
        seconds = time.perf_counter() - started
        candidates = {image: c.text for image, c in zip(images, captions[name], strict=True)}
        rows[name], image_scores = caption_scores(refs, candidates)
        rows[name] |= caption_statistics(list(candidates.values()))
        rows[name]["decoder images/s"] = len(images) / seconds
        if beam == SHIPPED_BEAM or per_image is None:
            per_image = image_scores
        if progress:
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[name].items()))
    return Evaluation(images, refs, captions, pd.DataFrame(rows).T, per_image)


def objects_photos(captioner: Captioner, paths: Sequence[Path]) -> tuple[list, np.ndarray]:
    """Each image file's COCO detections and (N, 80) best class scores, a chunk at a time."""
    found, best = [], []
    for first in range(0, len(paths), 32):
        chunk_found, chunk_best = captioner.detect(
            [load_image(p) for p in paths[first : first + 32]]
        )
        found += chunk_found
        best.append(chunk_best)
    return found, np.concatenate(best) if best else np.zeros((0, 80), np.float32)


def caption_statistics(candidates: list[str]) -> dict[str, float]:
    """Length and diversity: generic captions are the typical failure of maximum-likelihood."""
    words = [tokenize(text) for text in candidates]
    return {
        "mean words": float(np.mean([len(w) for w in words])),
        "distinct captions": len(set(candidates)) / len(candidates),
        "words used": float(len({word for w in words for word in w})),
    }


def word_precision(evaluation: Evaluation, name: str, min_uses: int = 10) -> pd.DataFrame:
    """For each word the model uses, how often at least one reference of the image has it.

    A low precision means the word is often hallucinated: a colour, a gender, a count.
    """
    uses: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for image, caption in zip(evaluation.images, evaluation.captions[name], strict=True):
        reference_words = {w for text in evaluation.refs[image] for w in tokenize(text)}
        for word in set(caption.words):
            uses[word] += 1
            hits[word] += word in reference_words
    table = pd.DataFrame({"uses": pd.Series(uses), "in a reference": pd.Series(hits)}).astype(int)
    table = table[table["uses"] >= min_uses]
    table["precision"] = table["in a reference"] / table["uses"]
    group = {word: name for name, words in WORD_GROUPS.items() for word in words}
    table["group"] = [group.get(word, "") for word in table.index]
    return table.sort_values("precision")


def group_precision(words: pd.DataFrame) -> pd.DataFrame:
    """Word precision pooled by group (colour, person, count) and over all other words."""
    groups = words.assign(group=words["group"].replace("", "other")).groupby("group")
    pooled = groups[["uses", "in a reference"]].sum()
    pooled["precision"] = pooled["in a reference"] / pooled["uses"]
    return pooled.sort_values("precision")


def parameter_table(model: keras.Model) -> pd.DataFrame:
    """Trained weights of the decoder by component: shapes and parameter counts."""
    rows = [
        {
            "weight": v.path.split("/", 1)[-1],
            "shape": str(tuple(v.shape)),
            "parameters": int(np.prod(v.shape)),
        }
        for v in model.weights
    ]
    table = pd.DataFrame(rows).set_index("weight")
    table.loc["total"] = ["", int(table["parameters"].sum())]
    return table


# --- speed and memory -----------------------------------------------------------------------------


def measure_speed(
    captioner: Captioner, images: list[np.ndarray], beam: int = SHIPPED_BEAM, repeats: int = 20
) -> dict[str, float]:
    """Latency of one image (backbone + beam search) and throughput of batches of 32."""
    captioner.caption_images(images[:32], beam=beam)  # warm-up: traces both batch sizes
    captioner.caption_images(images[:1], beam=beam)
    latencies = []
    for image in images[:repeats]:
        started = time.perf_counter()
        captioner.caption_images([image], beam=beam)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    for first in range(0, len(images), 32):
        captioner.caption_images(images[first : first + 32], beam=beam)
    return {
        "latency_ms": 1000 * float(np.median(latencies)),
        "images_per_second": len(images) / (time.perf_counter() - started),
    }


def measure_cli_memory(files: list[Path], model_dir: Path, beam: int = SHIPPED_BEAM) -> dict:
    """Peak RSS of `scancap caption` over `files`, with `/usr/bin/time -v` as the brief asks."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "scancap.cli", "caption", *map(str, files)]
        command += ["--out", f"{folder}/captions.csv", "--beam", str(beam), "--quiet"]
        # `scancap caption --models DIR` reads DIR/captioner (and DIR/classifier).
        if model_dir.name != "captioner":
            raise ValueError(f"{model_dir}: the captioner's folder must be named captioner/")
        command += ["--models", str(model_dir.parent)]
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True
        )
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return {
        "images": len(files),
        "peak_rss_mb": int(peak.group(1)) / 1024 if peak else float("nan"),
        "wall_seconds": time.perf_counter() - started,
    }


# --- the report -----------------------------------------------------------------------------------


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A markdown table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    header = "| | " + " | ".join(map(str, frame.columns)) + " |"
    lines = [header, "|" + "---|" * (len(frame.columns) + 1)]
    for index, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(value: float, target: float, higher: bool = True) -> str:
    return "yes" if (value >= target if higher else value <= target) else "**no**"


def fitting_analysis(history: pd.DataFrame) -> str:
    """Over/under-fitting in numbers, from the training history."""
    best = int(history["val_cider"].idxmax())
    low = int(history["val_cross_entropy"].idxmin())
    last = history.iloc[-1]
    gap = last["val_cross_entropy"] - last["cross_entropy"]
    return (
        f"Dev cross-entropy is lowest at epoch {low + 1} "
        f"({history['val_cross_entropy'][low]:.3f} nats) and dev CIDEr-D peaks at epoch "
        f"{best + 1} ({history['val_cider'][best]:.3f}); the kept weights are those of epoch "
        f"{best + 1}. At the last epoch ({len(history)}), training cross-entropy is "
        f"{last['cross_entropy']:.3f} (measured with dropout on) against "
        f"{last['val_cross_entropy']:.3f} on dev, a gap of {gap:+.3f} nats. "
        + (
            "Dev cross-entropy rising after its minimum while training cross-entropy keeps "
            "falling is the signature of over-fitting; early stopping on CIDEr-D and the "
            "halved learning rate bound it."
            if history["val_cross_entropy"].iloc[-1] > history["val_cross_entropy"][low] + 0.02
            else "Dev cross-entropy has not started to rise: the model is not over-fitting yet, "
            "and more epochs or capacity could still help (mild under-fitting, the price of a "
            "30-minute CPU budget)."
        )
    )


def decoding_text(record: dict) -> str:
    """How the length exponent was chosen, with the dev scores of each one tried."""
    if "decoding" not in record:
        return ", α = 0.7."
    decoding = record["decoding"]
    search = pd.DataFrame(decoding["search"]).set_index("length_penalty")
    search.index.name = "α"
    command = "captioner-ensemble" if "members" in decoding else "captioner"
    return f""", α = {decoding["length_penalty"]}, chosen by
`scancap train {command}` as the best dev CIDEr-D of beam {decoding["beam"]} among these
(scancap tokenizer, no Java):

{_table(search, 4)}

"""


def scst_section(history: pd.DataFrame, record: dict, link: Callable[[str], str]) -> str:
    """The self-critical phase: recipe, per-epoch table, curves and what it changed."""
    scst = record["scst"]
    recipe = scst["recipe"]
    before, best = scst["dev_beam3_before"], scst["dev_beam3_best"]
    flip = (
        '; half the batches see the mirrored grids, their sampled captions\' "left" and '
        '"right" swapped back before scoring'
        if recipe.get("flip")
        else ""
    )
    table = history.set_index("epoch")[["train_reward", "dev_BLEU-4", "dev_CIDEr-D", "seconds"]]
    table["seconds"] = table["seconds"].round().astype(int)
    table = table.astype(object).where(table.notna(), "")
    table.columns = ["mean sampled train reward", "dev beam-3 BLEU-4", "dev beam-3 CIDEr-D", "s"]
    return f"""
## Self-critical fine-tuning (SCST)

Teacher forcing trains each word on the reference's prefix and maximises word likelihood, but
the decoder is used on its own prefixes and judged by CIDEr-D. Self-critical sequence training
(Rennie et al. 2017) fine-tunes the cross-entropy model above on its own captions: per train
image it samples {recipe["samples"]} captions, scores each by CIDEr-D against the image's 5
references (document frequencies from the train references; scancap's implementation matches
pycocoevalcap's to 1e-15, tested), and takes a policy-gradient step that raises the
log-probability of the samples that beat the mean of the image's other samples (Luo 2020's
baseline) and lowers the others. Adam {recipe["learning_rate"]}, clipnorm
{recipe["clipnorm"]}, {recipe["images_per_batch"]} images ({
        recipe["images_per_batch"] * recipe["samples"]
    } captions) per step, no dropout (the distribution that was sampled){flip}, at most
{recipe["epochs"]} epochs, stopped after {recipe["patience"]} without a better dev beam-3
CIDEr-D (scancap tokenizer, α 0.7), best epoch kept.

{_table(table, 4)}

{link("scst")}

Dev beam 3 went from BLEU-4 {before["BLEU-4"]:.3f} / CIDEr-D {before["CIDEr-D"]:.3f} (epoch 0,
the cross-entropy model) to {best["BLEU-4"]:.3f} / {best["CIDEr-D"]:.3f} (epoch
{scst["best_epoch"]} of {scst["epochs_run"]}, {scst["seconds_per_epoch"]:.0f} s per epoch).
The mean reward of the sampled train captions measures what the policy learned; dev beam-3
CIDEr-D is what is kept.
"""


def _example_text(caption: Caption, refs: list[str], score: float | None = None) -> str:
    head = f"CIDEr-D {score:.2f}\n" if score is not None else ""
    return head + f"ours: {caption.text}\nref:  {refs[0]}\nref:  {refs[1]}"


def write_report(
    model_dir: Path | None = None,
    data: Path | None = None,
    cache_dir: Path | None = None,
    report: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> Path:
    """Evaluate the shipped captioner on dev; write the report, its figures and the model card."""
    model_dir = Path(model_dir or MODEL_DIR)
    report = Path(report or reports_dir() / "captioning.md")
    data = data or data_dir()
    figure_dir = report.parent / "figures"
    captioner = Captioner.load(model_dir)
    images = load_split("dev", data, limit)
    cache = build_feature_cache(images, cache_dir, data, progress=progress)
    captions = load_captions(data)
    refs = references(captions, images)
    paths = [data / FLICKR / "images" / name for name in images]
    lite0 = lite0_photos(captioner, paths) if captioner.needs_lite0 else None
    grain = grain_photos(captioner, paths) if captioner.needs_grain else None
    objects = objects_photos(captioner, paths) if captioner.needs_objects else None
    evaluation = evaluate(
        captioner, cache.grids, images, refs, progress=progress, lite0=lite0, grain=grain,
        objects=objects,
    )  # fmt: skip

    pixels = [load_image(data / FLICKR / "images" / name) for name in images[:256]]
    speed = measure_speed(captioner, pixels)
    files = [data / FLICKR / "images" / name for name in images[:200]]
    memory = measure_cli_memory(files, model_dir)
    members = member_dirs(model_dir)
    history = pd.read_csv(members[0] / HISTORY_FILE)
    record = training_record(model_dir)
    scst_path = members[0] / SCST_HISTORY_FILE
    scst = pd.read_csv(scst_path) if "scst" in record and scst_path.exists() else None

    shipped = f"beam {SHIPPED_BEAM}"
    words = word_precision(evaluation, shipped)
    figures = {
        "curves": caption_figures.training_curves(history),
        **({"scst": caption_figures.scst_curves(scst)} if scst is not None else {}),
        "architecture": caption_figures.architecture(),
        "attention": caption_figures.attention_maps(
            [(pixels[i], evaluation.captions[shipped][i]) for i in range(0, 48, 8)]
        ),
        "examples": _examples_figure(evaluation, pixels, shipped, best=True),
        "failures": _examples_figure(evaluation, pixels, shipped, best=False),
    }
    paths = {
        name: save(figure, figure_dir / f"{FIGURE_PREFIX}{name}.png")
        for name, figure in figures.items()
    }
    study = None
    if captioner.grounding is not None:
        dev_grounded = evaluation.captions[shipped]  # the shipped decoding is grounded
        study = grounding_study(
            captioner,
            data,
            (cache.grids, lite0, grain, objects),
            dev_grounded,
            refs,
            SHIPPED_BEAM,
            limit,
        )
    grounded = (
        grounding_section(study)
        if study is not None
        else "No `grounding.json` in the captioner folder: captions are not grounded."
    )
    text = render(
        evaluation, words, speed, memory, (history, scst), record, paths, report, grounded
    )
    atomic_write_text(report, text)
    atomic_write_text(model_dir / MODEL_CARD, model_card(evaluation, record, speed))
    return report


def training_record(model_dir: Path) -> dict:
    """The training record of a single decoder, or of an ensemble's first member completed with
    the ensemble's decoding, its members' summaries and their largest training memory."""
    decoding = read_decoding(model_dir)
    members = member_dirs(model_dir, decoding)
    records = [json.loads((member / RECORD_FILE).read_text()) for member in members]
    if len(members) == 1:
        return records[0]
    return records[0] | {
        "decoding": decoding,
        "peak_rss_mb": max(record["peak_rss_mb"] for record in records),
        "members": [
            member_summary(member.name, record)
            for member, record in zip(members, records, strict=True)
        ],
    }


def member_summary(name: str, record: dict) -> dict:
    """One row of the ensemble table: how the member was trained and how it scores alone."""
    alone = chosen_row(record["decoding"])
    scst = record.get("scst")
    return {
        "member": name,
        "seed": record["recipe"]["seed"],
        "cross-entropy epochs (best)": f"{record['epochs_run']} ({record['best_epoch']})",
        "SCST epochs (best)": (
            f"{scst['epochs_run']} ({scst['best_epoch']}), seed {scst['recipe']['seed']}"
            if scst
            else "none"
        ),
        "α alone": f"{record['decoding']['length_penalty']:.1f}",
        "BLEU-4 alone": alone["BLEU-4"],
        "CIDEr-D alone": alone["CIDEr-D"],
    }


def ensemble_section(record: dict) -> str:
    """What the ensemble is, its members alone, and what combining them costs."""
    members = pd.DataFrame(record["members"]).set_index("member")
    best = chosen_row(record["decoding"])
    return f"""
## Ensemble

The shipped captioner is {len(members)} decoders trained as above (one vocabulary, different
seeds or self-critical runs): at every beam step each member reads the same backbone grid with
its own state and attention, and the beam ranks words by the mean of their next-word
probabilities (the attention maps shown are the members' mean). The sections above describe
member 1. Each member alone and the ensemble, dev beam {record["decoding"]["beam"]}, scancap
tokenizer, each with its own length exponent chosen on dev:

{_table(members, 4)}

Ensemble: BLEU-4 {best["BLEU-4"]:.4f}, CIDEr-D {best["CIDEr-D"]:.4f} (α
{record["decoding"]["length_penalty"]}). The backbone runs once per image; the decoder's cost
grows with the number of members (see the speed figures).
"""


def _examples_figure(evaluation: Evaluation, pixels: list[np.ndarray], name: str, best: bool):
    """The 8 best- or worst-scored images (by per-image CIDEr-D) among those loaded."""
    scores = evaluation.per_image["CIDEr-D"].iloc[: len(pixels)]
    order = np.argsort(-scores.to_numpy() if best else scores.to_numpy(), kind="stable")[:8]
    texts = [
        _example_text(
            evaluation.captions[name][i], evaluation.refs[evaluation.images[i]], scores.iloc[i]
        )
        for i in order
    ]
    return caption_figures.caption_grid([pixels[i] for i in order], texts)


def render(
    evaluation: Evaluation,
    words: pd.DataFrame,
    speed: dict[str, float],
    memory: dict,
    histories: tuple[pd.DataFrame, pd.DataFrame | None],
    record: dict,
    paths: dict[str, Path],
    report: Path,
    grounded: str,
) -> str:
    history, scst = histories

    def link(name: str) -> str:
        return f"![{name}]({paths[name].relative_to(report.parent).as_posix()})"

    shipped = evaluation.scores.loc[f"beam {SHIPPED_BEAM}"]
    metric_columns = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"]
    targets = pd.DataFrame(
        [
            *(
                [
                    f"{metric} (dev, beam {SHIPPED_BEAM})",
                    f">= {target}",
                    f"{shipped[metric]:.4f}",
                    _verdict(shipped[metric], target),
                ]
                for metric, target in TARGETS.items()
            ),
            [
                "one image, backbone + beam (ms)",
                f"<= {LATENCY_TARGET_MS:.0f}",
                f"{speed['latency_ms']:.0f}",
                _verdict(speed["latency_ms"], LATENCY_TARGET_MS, False),
            ],
            [
                "batched images/s (batches of 32)",
                f">= {THROUGHPUT_TARGET:.0f}",
                f"{speed['images_per_second']:.1f}",
                _verdict(speed["images_per_second"], THROUGHPUT_TARGET),
            ],
            [
                "training peak RSS (MB)",
                "<= 4096",
                f"{record['peak_rss_mb']:.0f}",
                _verdict(record["peak_rss_mb"], 4096, False),
            ],
            [
                f"inference peak RSS (MB), `scancap caption` on {memory['images']} images",
                "<= 1536",
                f"{memory['peak_rss_mb']:.0f}",
                _verdict(memory["peak_rss_mb"], 1536, False),
            ],
        ],
        columns=["", "target", "measured", "met"],
    ).set_index("")
    pooled = group_precision(words)
    recipe = record["recipe"]
    return f"""# Captioning report

Generated by `make report-captioning` on {datetime.date.today().isoformat()}, on
{machine()}. Model: `models/captioner/` trained on {record["date"]}{
        f" (self-critical phase {record['scst']['date']})" if "scst" in record else ""
    } by
`scancap train captioner` ({record["train_images"]:,} Flickr8k train images,
{record["train_captions"]:,} captions){
        f"; {len(record['members'])} such decoders form an ensemble (see Ensemble below)"
        if "members" in record
        else ""
    }. All scores are on the {len(evaluation.images):,}
Flickr8k **dev** images with their 5 references each, computed with pycocoevalcap (PTB
tokenizer; CIDEr-D is pycocoevalcap's `Cider`; SPICE is skipped: it downloads Stanford CoreNLP).
Dev also selected the epochs (early stopping on greedy CIDEr-D{
        ", then the self-critical epoch on beam-3 CIDEr-D" if scst is not None else ""
    }): the standard test split is kept for an independent evaluation, so these figures are
slightly optimistic.

## Targets

{_table(targets)}

## Out of domain: grounding, hallucination, COCO-mini

{grounded}

## Metrics: greedy vs beam search

{_table(evaluation.scores[metric_columns])}

Beam search uses length normalisation (log P / length^α){decoding_text(record)}
Caption statistics and decoder speed (cached features, batches of 100, {machine()}):

{_table(evaluation.scores[STATISTICS], 2)}

For comparison, Show, Attend and Tell reports on the Flickr8k *test* split BLEU-4 0.195 (soft)
/ 0.213 (hard attention) and METEOR 0.189 / 0.203, with a VGG encoder.

## Model

{link("architecture")}

Frozen ImageNet MobileNetV2 (its 7x7x1280 grid = 49 regions, computed once per image and
cached) -> dense projection to {recipe["projection_dim"]} (ReLU) -> GRU
{recipe["units"]} with additive attention ({recipe["attention_units"]} units) over the 49
regions, Show, Attend and Tell's gate on the context, embedding {recipe["embedding_dim"]},
deep readout, dropout {recipe["dropout"]}; {record["parameters"]:,} trained parameters.
Vocabulary: {record["vocabulary"]:,} tokens (words seen >= {recipe["min_count"]} times in
train, plus `<pad> <start> <end> <unk>`), captions of at most {record["max_len"]} words (the
{recipe["length_percentile"]:.0f}th percentile; longer ones are left out of training).
Objective: label-smoothed ({recipe["label_smoothing"]}) cross-entropy with teacher forcing +
{recipe["attention_weight"]} x the doubly stochastic attention regulariser. Adam
{recipe["learning_rate"]}, gradient norm clipped at {recipe["clipnorm"]}, batches of
{recipe["batch_size"]} captions of similar length, horizontal-flip augmentation of the grid
(with "left"/"right" swapped), learning rate halved when dev CIDEr-D stalls.

## Training

{record["epochs_run"]} epochs of {record["seconds_per_epoch"]:.0f} s on average, the fastest
{history["epoch_seconds"].min():.0f} s (training + dev loss + greedy dev decoding and scoring;
slower epochs shared the 2 cores with other jobs); best epoch {record["best_epoch"]}.

{link("curves")}

{fitting_analysis(history)}
{scst_section(scst, record, link) if scst is not None else ""}{
        ensemble_section(record) if "members" in record else ""
    }
## Examples and attention

Each row: a dev image with its caption (beam {SHIPPED_BEAM}), then for each word the image
brightened where the decoder attended (7x7 weights, upsampled).

{link("attention")}

The best-scored dev images (per-image CIDEr-D, among the first 256):

{link("examples")}

## Failure analysis

The worst-scored dev images:

{link("failures")}

How often a word the model writes appears in at least one reference of the image
(words used at least 10 times), pooled by kind of word:

{_table(pooled, 3)}

The 12 least reliable words:

{_table(words.head(12), 3)}

Typical failures: (1) **a narrow, generic vocabulary**: maximum-likelihood training with beam
search, and even more a CIDEr-D reward, which pays for the n-grams most references share,
favour safe, frequent phrasings ("a man in a red shirt", "a dog runs through the
grass"): {shipped["distinct captions"]:.0%} of the dev captions are distinct, but they use only
{shipped["words used"]:.0f} of the {record["vocabulary"]:,} words; (2) **attributes**
(colours, gender, counts) are hallucinated much more often than the scene words, as the table
shows; (3) **rare scenes** (anything unlike dogs, children, sports and water, which dominate
Flickr8k) get the caption of the nearest frequent scene.

## Speed and memory

Measured on {machine()} ({datetime.date.today().isoformat()}), TensorFlow on CPU:

- one image, backbone + beam {SHIPPED_BEAM} decoding: **{speed["latency_ms"]:.0f} ms** (median
  of 20, image already decoded);
- batches of 32 images, backbone + beam {SHIPPED_BEAM}: **{speed["images_per_second"]:.1f}
  images/s**;
- decoder alone on cached features: see the table above;
- peak RSS of `scancap caption` over {memory["images"]} dev images (`/usr/bin/time -v`):
  **{memory["peak_rss_mb"]:.0f} MB** ({memory["wall_seconds"]:.0f} s including start-up);
- peak RSS of `scancap train captioner` (`getrusage`, the figure `/usr/bin/time -v` reports):
  **{record["peak_rss_mb"]:.0f} MB**: features stay float16 memory-mapped on disk and are
  streamed batch by batch with tf.data.
"""


def _scst_line(record: dict) -> str:
    """The training phases after cross-entropy, for the model card."""
    text = ""
    if "scst" in record:
        scst = record["scst"]
        text += f"; self-critical (CIDEr-D) on {scst['date']}, best epoch {scst['best_epoch']} "
        text += f"of {scst['epochs_run']}"
    if "decoding" in record and "members" not in record:  # an ensemble's has its own line
        decoding = record["decoding"]
        text += f"; beam {decoding['beam']}, length exponent {decoding['length_penalty']} "
        text += f"(`{DECODING_FILE}`)"
    return text


def _folder_contents(record: dict) -> str:
    """For the model card: which file holds what, and where an ensemble's members are."""
    files = (
        f"`{RECORD_FILE}` (training record), `config.json` (decoder configuration), "
        f"`decoder.weights.h5`, `vocabulary.json` ({record['vocabulary']:,} tokens, captions up "
        f"to {record['max_len']} words), `{DECODING_FILE}` (beam search's length exponent), "
        f"`{HISTORY_FILE}` and `{SCST_HISTORY_FILE}` (the two training phases)."
    )
    if "members" not in record:
        return f"This folder holds only what is trained: {files}"
    names = ", ".join(f"`{member['member']}/`" for member in record["members"])
    return (
        f"An ensemble of {len(record['members'])} such decoders ({names}), their next-word "
        f"probabilities averaged; `{DECODING_FILE}` lists them with the ensemble's length "
        f"exponent. Each member folder holds only what is trained: {files}"
    )


def _member_prefix(record: dict) -> str:
    return "member 1, " if "members" in record else ""


def _ensemble_line(record: dict) -> str:
    """For the model card: how an ensemble's members were made and combined."""
    if "members" not in record:
        return ""
    seeds = ", ".join(str(member["seed"]) for member in record["members"])
    return (
        f"- **Ensemble**: members trained by `scancap train captioner --seed S` (S = {seeds}), "
        f"combined by `scancap train captioner-ensemble`, which chose the length exponent "
        f"{record['decoding']['length_penalty']} on dev.\n"
    )


def model_card(evaluation: Evaluation, record: dict, speed: dict[str, float]) -> str:
    shipped = evaluation.scores.loc[f"beam {SHIPPED_BEAM}"]
    metrics = ", ".join(
        f"{m} {shipped[m]:.3f}" for m in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
    )
    kept = f"{DOG_KEPT:.0%}"  # of Flickr8k's captioned dogs, those the dog gate lets through
    return f"""# Model card: scancap captioner

- **What**: one-sentence English captions for photos. Show, Attend and Tell-style decoder
  (additive attention over the 49 regions of the frozen ImageNet MobileNetV2
  `models/mobilenet_v2_imagenet.keras`, GRU {record["recipe"]["units"]}, beam search).
  {_folder_contents(record)}
- **Data**: Flickr8k (Hodosh, Young, Hockenmaier 2013), {record["train_images"]:,} train
  images x 5 captions; epoch selected on the 1,000 dev images.
- **Metrics** (dev, beam {SHIPPED_BEAM}, pycocoevalcap): {metrics}. Full report:
  `reports/captioning.md`.
- **Speed**: {speed["latency_ms"]:.0f} ms for one image (backbone + beam),
  {speed["images_per_second"]:.1f} images/s in batches ({machine()}).
- **Trained**: {_member_prefix(record)}{record["date"]}, `scancap train captioner`:
  cross-entropy, best epoch {record["best_epoch"]} of {record["epochs_run"]}{_scst_line(record)}.
{_ensemble_line(record)}- **Grounding** (`grounding.json`, `scancap train grounding`): the animal
  and flower detectors and the backbone's ImageNet head read the same grid; the person detector
  scores each of its 49 regions and pools the scores by a soft maximum (multiple-instance
  learning), so that a small figure is not averaged away, and reads each region through two
  backbones side by side: this grid and the classifier's EfficientNet-Lite0 grid of the photo
  as it came in (`models/efficientnet_lite0_imagenet.npz`; the pipeline hands it over,
  `scancap caption` computes it). Beam search names
  no person or animal they do not support, and no dog where ImageNet's dog breeds hold almost
  no probability (a dog gate set so that {kept} of Flickr8k's captioned dogs pass it). A photo
  with neither opens with a thing or a scene. A photo grainier than any Flickr8k training photo
  (its σ̂ as it came in, measured after the pixel averaging of the backbones' resize: the fine
  grain of a large scan, which it averages away, does not count) is held to higher person and
  animal thresholds, set on grainy copies of the select half. Each caption comes with tags.
  Out-of-domain
  hallucination and COCO-mini scores: `reports/captioning.md`.
- **Object words** (`grounding.json`'s `objects` and presence detectors, `scancap train
  objects`; the COCO detector in `models/detector/`): every concrete noun belongs to an object
  group; a group a COCO class stands for is said only where NanoDet scores it, a scene group
  (grass, water, snow, building...) only where its presence detector finds it, both at the
  score that keeps 80% of the Flickr8k train photos naming it; bridge, fountain, statue and
  tent only where ImageNet's likeliest concept names them. A grounded caption scoring below
  `fallback_score` is rebuilt from the evidence (scene concept and counted objects).
  Invented objects (CHAIR) and their cost on dev: `reports/captioning_objects.md`.
- **Limits**: the language is Flickr8k's (people, dogs, sports, water). Out of that domain,
  grounded captions are safer but often clumsy ("black and white leaves are standing on a
  rock"): their grammar is repaired, not their sense. In domain, a person the detector does
  not confirm (often a small figure in a scene) gets a caption about a thing: most of the dev
  CIDEr-D that grounding costs. The person
  detector reads regions, so a face that fills the whole frame can be missed, and a statue can
  be taken for a man; Kodak's small sailors (kodim10), found by the MobileNetV2-only detector,
  are missed by the shipped one.
  Other animals than dogs get the few animal words Flickr8k taught ("a cat" for a tiger,
  "a sheep" for a camel), and a penguin can still be called a dog.
  Grain raises the detectors' scores (the animal detector's above all); the grainy thresholds
  trade that for recall: a grainy scan loses more of its real people and animals to a thing
  caption, and a blurred one, whose σ̂ stays low, still loses many
  (`reports/grounding_blur.md` measures both, as is and after restoration).
  Attributes such as colours, gender and counts are often wrong. `scancap caption`
  skips what the classifier does not call a photo, unless `--all`.
- **Licence**: Flickr8k is licensed for **research use only** (photos belong to their Flickr
  owners), so this model is for evaluation and demonstration, not for commercial use. The
  backbone comes from torchvision's ImageNet weights.
"""
