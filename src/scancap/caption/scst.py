"""Self-critical sequence training (SCST): fine-tune the decoder on its own samples for CIDEr-D.

Teacher forcing trains each word on the reference's prefix, yet at test time the decoder feeds
on its own words, and it maximises word likelihood while captions are judged by CIDEr-D. SCST
(Rennie et al., 2017) closes both gaps: per image it samples K captions from the decoder,
rewards each with its CIDEr-D against the image's references, and raises the log-probability
of the samples that beat the mean reward of the other K - 1 (the baseline of Luo, 2020, which
needs no extra greedy pass). It starts from the cross-entropy model and keeps the epoch with
the best dev CIDEr-D under the shipped beam search.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops
from tqdm import tqdm

from scancap.caption.data import flip_grids
from scancap.caption.metrics import caption_scores
from scancap.caption.model import WEIGHTS_FILE, CaptionDecoder, Captioner, Vocabulary, tokenize

SCST_HISTORY_FILE = "scst_history.csv"
STATE_FILE = "scst_state.json"
LAST_WEIGHTS_FILE = "scst_last.weights.h5"
NEVER = -1e9  # logit of a token that must not be sampled (-inf would give NaN gradients)
MAX_N = 4


# --- the reward -----------------------------------------------------------------------------------


def _ngram_counts(words: Sequence[str]) -> list[Counter]:
    """Counts of the 1..4-grams of a caption, one Counter per order."""
    return [
        Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        for n in range(1, MAX_N + 1)
    ]


@dataclass
class _Vector:
    """A caption as tf-idf weighted n-gram counts per order, their norms, and its length."""

    weights: list[dict[tuple, float]]
    norms: np.ndarray
    length: int


class CiderD:
    """CIDEr-D of single captions against fixed references, as pycocoevalcap computes it.

    Document frequencies come from the references given here (the training set), so a reward
    for one caption does not depend on the rest of its batch. Per n-gram order the similarity
    is the cosine of tf-idf vectors with the candidate's counts clipped to the reference's,
    damped by a Gaussian penalty on the length difference (sigma 6); the orders are averaged,
    the references averaged and the result scaled by 10.
    """

    def __init__(self, references: dict[str, list[list[str]]], sigma: float = 6.0) -> None:
        self.sigma = sigma
        frequency: Counter = Counter()
        for refs in references.values():
            frequency.update({g for ref in refs for counts in _ngram_counts(ref) for g in counts})
        self.frequency = frequency
        self.log_images = float(np.log(len(references)))
        self.references = {
            key: [self.vector(ref) for ref in refs] for key, refs in references.items()
        }

    def vector(self, words: Sequence[str]) -> _Vector:
        weights = [
            {
                gram: count * (self.log_images - np.log(max(1.0, self.frequency[gram])))
                for gram, count in counts.items()
            }
            for counts in _ngram_counts(words)
        ]
        norms = np.array([np.sqrt(sum(w * w for w in order.values())) for order in weights])
        return _Vector(weights, norms, len(words))

    def score(self, key: str, words: Sequence[str]) -> float:
        """CIDEr-D of one caption (a list of words) for the image `key`."""
        candidate = self.vector(words)
        total = 0.0
        for ref in self.references[key]:
            similarity = 0.0
            for n in range(MAX_N):
                if candidate.norms[n] == 0 or ref.norms[n] == 0:
                    continue
                ref_weights = ref.weights[n]
                overlap = sum(
                    min(weight, ref_weights[gram]) * ref_weights[gram]
                    for gram, weight in candidate.weights[n].items()
                    if gram in ref_weights
                )
                similarity += overlap / (candidate.norms[n] * ref.norms[n])
            penalty = np.exp(-((candidate.length - ref.length) ** 2) / (2 * self.sigma**2))
            total += similarity / MAX_N * penalty
        return 10.0 * total / len(self.references[key])


def leave_one_out_advantages(rewards: np.ndarray) -> np.ndarray:
    """(images, K) rewards minus the mean of the image's other K - 1 samples."""
    k = rewards.shape[1]
    baseline = (rewards.sum(axis=1, keepdims=True) - rewards) / (k - 1)
    return (rewards - baseline).astype(np.float32)


# --- sampling and the policy-gradient step --------------------------------------------------------


def _banned_tokens(vocab: Vocabulary) -> np.ndarray:
    """Logit offsets: <pad>, <start> and <unk> are never sampled."""
    offsets = np.zeros(len(vocab), np.float32)
    offsets[[vocab.pad, vocab.start, vocab.unk]] = NEVER
    return offsets


def make_sampler(model: CaptionDecoder, vocab: Vocabulary) -> Callable:
    """Compiled (grids (N, 49, C), seed (2,)) -> sampled tokens (N, max_len + 1), 0 after <end>.

    Captions are drawn word by word from the decoder's distribution (no dropout); the last
    step may only be <end>, so every caption ends.
    """
    banned = tf.constant(_banned_tokens(vocab))
    only_end = np.full(len(vocab), NEVER, np.float32)
    only_end[vocab.end] = 0.0
    only_end = tf.constant(only_end)

    @tf.function(reduce_retracing=True)
    def sample(grids, seed):
        features, keys, state = model.encode(grids)
        words = tf.fill([tf.shape(grids)[0]], vocab.start)
        finished = tf.zeros_like(words, tf.bool)
        sampled = []
        for t in range(vocab.max_len + 1):
            log_probs, state, _ = model.step(words, state, features, keys)
            log_probs += only_end if t == vocab.max_len else banned
            step_seed = seed + tf.constant([0, t], tf.int32)
            words = tf.cast(
                tf.random.stateless_categorical(log_probs, 1, step_seed)[:, 0], tf.int32
            )
            words = tf.where(finished, vocab.pad, words)
            finished |= tf.equal(words, vocab.end)
            sampled.append(words)
        return tf.stack(sampled, axis=1)

    return sample


def make_update(model: CaptionDecoder, optimizer: keras.optimizers.Optimizer, vocab: Vocabulary):
    """Compiled (grids, sampled tokens, advantages) -> loss: one REINFORCE step.

    loss = - sum over tokens of advantage x log p(token) / number of tokens, with the sampled
    captions fed back by teacher forcing (no dropout) and p the distribution they were drawn
    from, banned tokens excluded. Left in, those would soak up the probability that negative
    advantages take from sampled words, since nothing ever pushes them back down.
    """

    banned = tf.constant(_banned_tokens(vocab))

    @tf.function(reduce_retracing=True)
    def update(grids, tokens, advantages):
        starts = tf.fill([tf.shape(tokens)[0], 1], vocab.start)
        inputs = tf.concat([starts, tokens[:, :-1]], axis=1)
        mask = ops.cast(ops.not_equal(tokens, vocab.pad), "float32")
        with tf.GradientTape() as tape:
            logits, _ = model((grids, inputs), training=False)
            log_probs = ops.log_softmax(logits + banned, axis=-1)  # the policy sampled from
            picked = ops.squeeze(ops.take_along_axis(log_probs, tokens[..., None], -1), -1)
            loss = -ops.sum(advantages[:, None] * picked * mask) / ops.sum(mask)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss

    return update


# --- the training loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScstRecipe:
    """Self-critical fine-tuning settings (after the cross-entropy epochs)."""

    epochs: int = 8
    samples: int = 5
    images_per_batch: int = 16
    learning_rate: float = 5e-5
    clipnorm: float = 5.0
    patience: int = 2
    flip: bool = True  # half the batches see mirrored grids ("left"/"right" swapped back)
    seed: int = 42


def _word_lists(tokens: np.ndarray, vocab: Vocabulary) -> list[list[str]]:
    """Sampled ids -> words, up to <end> (which CIDEr-D does not see)."""
    return [tokenize(vocab.decode(row)) for row in tokens]


def dev_scores(
    captioner: Captioner, grids: np.ndarray, refs: dict[str, list[str]], beam: int = 3
) -> dict[str, float]:
    """Dev BLEU-4 and CIDEr-D of `beam` search (1: greedy), scancap tokenizer, no Java."""
    captions = captioner.caption_features(grids, beam=beam)
    candidates = {key: text for key, (text, _) in zip(refs, captions, strict=True)}
    scores, _ = caption_scores(refs, candidates, meteor=False, ptb=False)
    return {"BLEU-4": scores["BLEU-4"], "CIDEr-D": scores["CIDEr-D"]}


@dataclass
class ScstData:
    """What SCST reads: train images with their rows in the cache and references, dev likewise."""

    grids: np.ndarray  # the feature cache (memory map)
    train_rows: np.ndarray
    train_keys: list[str]
    train_refs: dict[str, list[str]]
    dev_rows: np.ndarray
    dev_refs: dict[str, list[str]]


def _run_epoch(
    data: ScstData,
    reward: CiderD,
    sample: Callable,
    update: Callable,
    recipe: ScstRecipe,
    vocab: Vocabulary,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[float, float]:
    """One pass over the train images; (mean sampled CIDEr-D, mean loss)."""
    order = rng.permutation(len(data.train_rows))
    batches = [
        order[i : i + recipe.images_per_batch]
        for i in range(0, len(order), recipe.images_per_batch)
    ]
    rewards_seen, losses = [], []
    swap = vocab.left_right_swap()
    for batch in tqdm(batches, desc="scst", unit="batch", disable=not progress, mininterval=30):
        rows = data.train_rows[batch]
        unique, inverse = np.unique(rows, return_inverse=True)  # memmaps read sorted rows
        grids = np.repeat(np.asarray(data.grids[unique], np.float32)[inverse], recipe.samples, 0)
        flipped = recipe.flip and rng.random() < 0.5
        if flipped:
            grids = flip_grids(grids)
        seed = rng.integers(0, 2**31 - 1, size=2, dtype=np.int32)
        tokens = np.asarray(sample(grids, seed))
        keys = np.repeat([data.train_keys[i] for i in batch], recipe.samples)
        as_seen = swap[tokens] if flipped else tokens  # the references describe the unflipped image
        rewards = np.array(
            [
                reward.score(key, words)
                for key, words in zip(keys, _word_lists(as_seen, vocab), strict=True)
            ]
        ).reshape(-1, recipe.samples)
        advantages = leave_one_out_advantages(rewards).reshape(-1)
        longest = int((tokens != vocab.pad).sum(axis=1).max())
        losses.append(float(update(grids, tokens[:, :longest], advantages)))
        rewards_seen.append(rewards.mean())
    return float(np.mean(rewards_seen)), float(np.mean(losses))


def self_critical(
    model: CaptionDecoder,
    vocab: Vocabulary,
    data: ScstData,
    out: Path,
    recipe: ScstRecipe = ScstRecipe(),
    max_seconds: float = np.inf,
    progress: bool = True,
) -> pd.DataFrame | None:
    """Fine-tune `model` in place with SCST; keeps the best dev epoch in `out`/WEIGHTS_FILE.

    Every epoch ends with the dev beam-3 CIDEr-D, a history row and a checkpoint of the last
    weights, so a stopped run resumes at the next epoch (the optimizer restarts, as Adam's
    moments re-estimate within a few steps). Returns the history, or None when `max_seconds`
    ran out first (rerun to resume). Epoch 0 of the history is the starting model.
    """
    history_path, state_path = out / SCST_HISTORY_FILE, out / STATE_FILE
    reward = CiderD(
        {key: [tokenize(text) for text in refs] for key, refs in data.train_refs.items()}
    )
    optimizer = keras.optimizers.Adam(recipe.learning_rate, clipnorm=recipe.clipnorm)
    optimizer.build(model.trainable_variables)
    sample, update = make_sampler(model, vocab), make_update(model, optimizer, vocab)
    captioner = Captioner.of(model, vocab)
    dev_grids = data.grids[data.dev_rows]

    if state_path.exists():
        state = json.loads(state_path.read_text())
        model.load_weights(out / LAST_WEIGHTS_FILE)
        history = pd.read_csv(history_path)
    else:
        state = {"epoch": 0}
        start = dev_scores(captioner, dev_grids, data.dev_refs)
        history = pd.DataFrame(
            [
                {"epoch": 0, "train_reward": np.nan, "loss": np.nan, "seconds": 0.0}
                | {f"dev_{k}": v for k, v in start.items()}
            ]
        )
        model.save_weights(out / WEIGHTS_FILE)
        history.to_csv(history_path, index=False)
    started, epochs_run = time.perf_counter(), 0
    while state["epoch"] < recipe.epochs:
        epoch = state["epoch"] + 1
        if _stalled(history, recipe.patience):
            break
        epoch_started = time.perf_counter()
        rng = np.random.default_rng([recipe.seed, epoch])
        train_reward, loss = _run_epoch(data, reward, sample, update, recipe, vocab, rng, progress)
        scores = dev_scores(captioner, dev_grids, data.dev_refs)
        row = {
            "epoch": epoch,
            "train_reward": train_reward,
            "loss": loss,
            "seconds": time.perf_counter() - epoch_started,
        } | {f"dev_{k}": v for k, v in scores.items()}
        if scores["CIDEr-D"] > history["dev_CIDEr-D"].max():
            model.save_weights(out / WEIGHTS_FILE)
        history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)
        history.to_csv(history_path, index=False)
        model.save_weights(out / LAST_WEIGHTS_FILE)
        state["epoch"] = epoch
        state_path.write_text(json.dumps(state))
        if progress:
            print(
                f"scst epoch {epoch}: train reward {train_reward:.3f}, dev beam-3 BLEU-4 "
                f"{scores['BLEU-4']:.4f} CIDEr-D {scores['CIDEr-D']:.4f} ({row['seconds']:.0f} s)",
                flush=True,
            )
        epochs_run += 1
        elapsed = time.perf_counter() - started
        if epoch < recipe.epochs and elapsed + elapsed / epochs_run > max_seconds:
            return None
    for path in (state_path, out / LAST_WEIGHTS_FILE):
        path.unlink(missing_ok=True)
    model.load_weights(out / WEIGHTS_FILE)
    return history


def _stalled(history: pd.DataFrame, patience: int) -> bool:
    """True when the last `patience` epochs did not beat the best dev CIDEr-D before them."""
    scores = history["dev_CIDEr-D"].to_numpy()
    return len(scores) > patience and scores[-patience:].max() <= scores[:-patience].max()
