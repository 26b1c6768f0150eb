"""Caption metrics: the COCO caption evaluation code (pycocoevalcap) behind one function.

BLEU-1..4, METEOR, ROUGE-L and CIDEr-D (pycocoevalcap's `Cider` is the CIDEr-D variant: clipped
n-gram counts and a Gaussian length penalty). References and candidates go through the PTB
tokenizer (Java), as in the official evaluation; `ptb=False` uses scancap's own tokenizer
instead, which needs no Java and is what training uses to pick its best epoch. METEOR (Java
too) is optional because it is the slowest. SPICE is left out: it downloads Stanford CoreNLP.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
import pandas as pd

from scancap.caption.model import tokenize
from scancap.quiet import descriptors_to

BLEU = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")


def _tokenized(captions: dict[str, list[str]], ptb: bool) -> dict[str, list[str]]:
    if not ptb:
        return {
            key: [" ".join(tokenize(text)) for text in texts] for key, texts in captions.items()
        }
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    records = {key: [{"caption": text} for text in texts] for key, texts in captions.items()}
    with _child_stderr_held():
        return PTBTokenizer().tokenize(records)


@contextlib.contextmanager
def _child_stderr_held() -> Iterator[None]:
    """The Java tokenizer reports its speed on file descriptor 2, which terminals and notebooks
    show as noise: hold what child processes write there, and show it only if the call fails."""
    with tempfile.TemporaryFile() as held:
        try:
            with descriptors_to(held.fileno()):
                yield
        except BaseException:
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise


def caption_scores(
    references: dict[str, list[str]],
    candidates: dict[str, str],
    meteor: bool = True,
    ptb: bool = True,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Corpus-level scores, and per-image scores (BLEU-4, ROUGE-L, CIDEr-D) for failure analysis.

    `references` maps an image to its reference captions, `candidates` to one generated caption.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    keys = list(candidates)
    gts = _tokenized({key: references[key] for key in keys}, ptb)
    res = _tokenized({key: [candidates[key]] for key in keys}, ptb)
    summary: dict[str, float] = {}
    per_image = pd.DataFrame(index=keys)
    with contextlib.redirect_stdout(io.StringIO()):  # the scorers print their internals
        bleu, bleu_images = Bleu(4).compute_score(gts, res, verbose=0)
        summary |= dict(zip(BLEU, bleu, strict=True))
        per_image["BLEU-4"] = bleu_images[3]
        if meteor:
            summary["METEOR"], _ = Meteor().compute_score(gts, res)
        summary["ROUGE-L"], per_image["ROUGE-L"] = Rouge().compute_score(gts, res)
        summary["CIDEr-D"], per_image["CIDEr-D"] = Cider().compute_score(gts, res)
    return {name: float(value) for name, value in summary.items()}, per_image.astype(np.float64)


def bleu(references: list[list[str]], candidates: list[str], n: int = 4) -> float:
    """Corpus BLEU-n of candidates against their references (scancap's tokenizer, no Java)."""
    keys = [str(i) for i in range(len(candidates))]
    scores, _ = caption_scores(
        dict(zip(keys, references, strict=True)),
        dict(zip(keys, candidates, strict=True)),
        meteor=False,
        ptb=False,
    )
    return scores[BLEU[n - 1]]


def hallucination_rates(
    captions: list[str], person: np.ndarray, animal: np.ndarray, rounds: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """CHAIR-style image-level hallucination (Rohrbach et al. 2018), with 95% bootstrap
    intervals: among photos without a person, the share of captions naming one; the same for
    animals; and among photos with neither, the share naming either."""
    from scancap.caption.grounding import ANIMAL_WORDS, PERSON_WORDS, mentions

    says_person = np.array([mentions(c, PERSON_WORDS) for c in captions])
    says_animal = np.array([mentions(c, ANIMAL_WORDS) for c in captions])
    person, animal = np.asarray(person) == 1, np.asarray(animal) == 1
    groups = {
        "person word, photo without a person": (~person, says_person),
        "animal word, photo without an animal": (~animal, says_animal),
        "either, photo with neither": (~person & ~animal, says_person | says_animal),
    }
    rng = np.random.default_rng(seed)
    rows = []
    for name, (mask, said) in groups.items():
        hits = said[mask]
        draws = [hits[rng.integers(0, len(hits), len(hits))].mean() for _ in range(rounds)]
        low, high = np.percentile(draws, [2.5, 97.5]) if len(hits) else (np.nan, np.nan)
        rows.append(
            {
                "measure": name,
                "photos": int(mask.sum()),
                "share": hits.mean(),
                "low": low,
                "high": high,
            }
        )
    return pd.DataFrame(rows)


ANIMAL_GROUPS = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "other animal"}
)


def group_is_there(group: str, visible: frozenset[str]) -> bool:
    """Whether a mentioned object group is among a photo's visible groups ("an animal" is
    right on any animal)."""
    if group == "other animal":
        return bool(visible & ANIMAL_GROUPS)
    return group in visible


def object_mentions(captions: list[str], visible: list[frozenset[str]]) -> pd.DataFrame:
    """One row per (photo, object group its caption names): whether the group is there."""
    from scancap.caption.objects import mentioned_groups

    rows = [
        {"photo": i, "group": group, "right": group_is_there(group, seen)}
        for i, (caption, seen) in enumerate(zip(captions, visible, strict=True))
        for group in mentioned_groups(caption)
    ]
    return pd.DataFrame(rows, columns=["photo", "group", "right"])


def chair(
    captions: list[str], visible: list[frozenset[str]], rounds: int = 2000, seed: int = 0
) -> dict[str, float]:
    """CHAIR (Rohrbach et al. 2018) against each photo's visible object groups: CHAIR_s, the
    share of captions naming an object that is not there, and CHAIR_i, the share of object
    mentions that are not, with 95% bootstrap intervals over photos."""
    table = object_mentions(captions, visible)
    n = len(captions)
    wrong, total = np.zeros(n), np.zeros(n)
    np.add.at(wrong, table["photo"].to_numpy(int), ~table["right"].to_numpy(bool))
    np.add.at(total, table["photo"].to_numpy(int), 1)
    draws = np.random.default_rng(seed).integers(0, n, (rounds, n))
    sentence = (wrong > 0)[draws].mean(axis=1)
    instance = wrong[draws].sum(axis=1) / np.maximum(total[draws].sum(axis=1), 1)
    return {
        "photos": n,
        "CHAIR_s": float((wrong > 0).mean()),
        "CHAIR_s low": float(np.quantile(sentence, 0.025)),
        "CHAIR_s high": float(np.quantile(sentence, 0.975)),
        "CHAIR_i": float(wrong.sum() / max(total.sum(), 1)),
        "CHAIR_i low": float(np.quantile(instance, 0.025)),
        "CHAIR_i high": float(np.quantile(instance, 0.975)),
        "mentions": int(total.sum()),
    }


def group_precision(captions: list[str], visible: list[frozenset[str]]) -> pd.DataFrame:
    """Per object group: how often captions name it, how often rightly, the precision."""
    table = object_mentions(captions, visible)
    out = table.groupby("group")["right"].agg(mentions="size", right="sum").reset_index()
    out["precision"] = out["right"] / out["mentions"]
    return out.sort_values(["mentions", "group"], ascending=[False, True])
