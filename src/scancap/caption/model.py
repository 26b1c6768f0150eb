"""Captioning: vocabulary, a Show, Attend and Tell decoder, batched beam search, `Captioner`.

The encoder is the shipped MobileNetV2 (``scancap.backbones.mobilenet_v2``): its 7x7x1280 grid
gives 49 region features. Only what sits on top of it is trained and shipped under
``models/captioner/``: a dense projection of the regions, additive (Bahdanau) attention, a GRU
and the word classifier, saved as weights + JSON config next to the vocabulary. Keeping the
backbone out lets the pipeline run it once per image and hand the same grid to the classifier
and the captioner.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from scancap.backbones.inputs import averaged_to_model_scale, to_model_input
from scancap.caption.detector import Detection, load_detector
from scancap.caption.grounding import GROUNDING_FILE, Evidence, GroundedDecoding, Grounding
from scancap.caption.scene import scene_sentence
from scancap.paths import models_dir
from scancap.quality import estimate_noise

GRID_CELLS = 49  # 7x7 regions of the backbone's last grid at 224 px
FEATURE_CHANNELS = 1280
PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0..3; PAD must be 0 (masking)
MODEL_DIR = models_dir() / "captioner"
WEIGHTS_FILE = "decoder.weights.h5"
CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.json"
DECODING_FILE = "decoding.json"  # the length-normalisation exponent chosen on dev
LENGTH_PENALTY = 0.7  # without a decoding.json

# Words, hyphenated words ("t-shirt") and clitics ("'s"): what the PTB tokenizer of the COCO
# metrics keeps, so generated captions and references are tokenised alike.
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|'[a-z]+")


# --- text -----------------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-cased words without punctuation: "A dog's T-shirt ." -> [a, dog, 's, t-shirt]."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def detokenize(words: Iterable[str]) -> str:
    """Words back to a sentence, clitics re-attached: [a, dog, 's] -> "a dog's"."""
    return " ".join(words).replace(" '", "'")


class Vocabulary:
    """Word <-> id mapping built from training captions, and the longest caption generated."""

    def __init__(self, words: Sequence[str], max_len: int) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.words = list(words)
        self.max_len = max_len  # words per caption, <start>/<end> excluded
        self.ids = {word: i for i, word in enumerate(self.words)}
        self.pad, self.start, self.end, self.unk = (self.ids[s] for s in SPECIALS)

    @classmethod
    def build(
        cls, captions: Iterable[str], min_count: int = 5, length_percentile: float = 99.0
    ) -> Vocabulary:
        """Words seen at least `min_count` times; max_len covers `length_percentile` % captions.

        Rarer words become <unk>: with 5 captions per image, a word seen under 5 times is
        mostly a typo or a one-off name the decoder could not learn anyway.
        """
        tokenized = [tokenize(text) for text in captions]
        counts = Counter(word for words in tokenized for word in words)
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: -counts[w])
        max_len = int(
            np.ceil(np.percentile([len(words) for words in tokenized], length_percentile))
        )
        return cls([*SPECIALS, *kept], max_len)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """<start> word ids <end> (any length: callers drop or trim long captions)."""
        return [self.start, *(self.ids.get(w, self.unk) for w in tokenize(text)), self.end]

    def decode(self, ids: Iterable[int]) -> str:
        """The sentence up to the first <end>, special tokens left out."""
        words = []
        for i in ids:
            if i == self.end:
                break
            if i >= len(SPECIALS):
                words.append(self.words[i])
        return detokenize(words)

    def left_right_swap(self) -> np.ndarray:
        """Id permutation exchanging "left" and "right", for horizontally flipped images."""
        swap = np.arange(len(self.words), dtype=np.int32)
        if "left" in self.ids and "right" in self.ids:
            swap[[self.ids["left"], self.ids["right"]]] = self.ids["right"], self.ids["left"]
        return swap

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"max_len": self.max_len, "words": self.words}, indent=0))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        record = json.loads(path.read_text())
        return cls(record["words"], record["max_len"])


def _grain(image: np.ndarray) -> float:
    """σ̂ (0-255) of the grain that reaches the backbones: their resize averages the pixels of a
    large photo, so grain that a large scan shows at full size may not reach the detectors.
    Per channel only (`shared=False`): the grain level and grainy thresholds were set with it."""
    try:
        return estimate_noise(averaged_to_model_scale(image), fast=True, shared=False)
    except ValueError:  # fewer pixels than the estimator's patches
        return float("nan")


# --- the model ------------------------------------------------------------------------------------


def _build_all(*layers_and_shapes: tuple[layers.Layer, tuple | None]) -> None:
    """Create sub-layer weights up front: weights cannot be created inside the RNN's loop."""
    for layer, shape in layers_and_shapes:
        if not layer.built:
            layer.build(shape)


@keras.saving.register_keras_serializable(package="scancap")
class AdditiveAttention(layers.Layer):
    """Bahdanau attention: e_i = v . tanh(W_k f_i + W_q h), alpha = softmax over the regions.

    `keys` (W_k f) does not depend on the decoder state: it is computed once per image.
    """

    def __init__(self, units: int, feature_dim: int, state_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.feature_dim, self.state_dim = units, feature_dim, state_dim
        self.key = layers.Dense(units, name="key")
        self.query = layers.Dense(units, use_bias=False, name="query")
        self.score = layers.Dense(1, name="score")

    def build(self, input_shape=None) -> None:
        _build_all(
            (self.key, (None, GRID_CELLS, self.feature_dim)),
            (self.query, (None, self.state_dim)),
            (self.score, (None, GRID_CELLS, self.units)),
        )

    def keys(self, features):
        return self.key(features)

    def call(self, features, keys, state):
        """Context vector (B, feature_dim) and attention weights (B, 49)."""
        energy = ops.tanh(keys + ops.expand_dims(self.query(state), 1))
        weights = ops.softmax(self.score(energy), axis=1)
        return ops.sum(weights * features, axis=1), ops.squeeze(weights, -1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "feature_dim": self.feature_dim,
            "state_dim": self.state_dim,
        }


@keras.saving.register_keras_serializable(package="scancap")
class AttentionGRUCell(layers.Layer):
    """One decoder step: attend with the previous state, gate the context, then a GRU step.

    The region features and keys travel as (unchanged) RNN states, because Keras 3's RNN layer
    has no `constants`. The output packs the new state, the context and the attention weights,
    which the readout and the attention regulariser need at every step.
    """

    def __init__(
        self, units: int, attention_units: int, feature_dim: int, input_dim: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.attention_units = units, attention_units
        self.feature_dim, self.input_dim = feature_dim, input_dim
        self.attention = AdditiveAttention(attention_units, feature_dim, units, name="attention")
        # Show, Attend and Tell's gate beta = sigmoid(f(h)): lets the decoder ignore the image
        # for function words ("a", "of") instead of forcing attention somewhere.
        self.gate = layers.Dense(feature_dim, activation="sigmoid", name="gate")
        self.gru = layers.GRUCell(units, name="gru")
        self.state_size = [units, (GRID_CELLS, feature_dim), (GRID_CELLS, attention_units)]
        self.output_size = units + feature_dim + GRID_CELLS

    def build(self, input_shape=None) -> None:
        _build_all(
            (self.attention, None),
            (self.gate, (None, self.units)),
            (self.gru, (None, self.input_dim + self.feature_dim)),
        )

    def call(self, inputs, states, training=False):
        state, features, keys = states
        context, weights = self.attention(features, keys, state)
        context = self.gate(state) * context
        state, _ = self.gru(ops.concatenate([inputs, context], axis=-1), state, training=training)
        return ops.concatenate([state, context, weights], axis=-1), [state, features, keys]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "attention_units": self.attention_units,
            "feature_dim": self.feature_dim,
            "input_dim": self.input_dim,
        }


def caption_loss(targets, logits, weights, label_smoothing: float, attention_weight: float):
    """(objective, token cross-entropy, token accuracy), padding (id 0) masked out.

    The objective adds to the label-smoothed cross-entropy the doubly stochastic regulariser of
    Show, Attend and Tell, mean over regions of (1 - sum_t alpha_ti)^2: it pushes the decoder
    to look at every region at some point of the caption instead of staring at one.
    """
    mask = ops.cast(ops.not_equal(targets, 0), logits.dtype)
    log_probs = ops.log_softmax(logits, axis=-1)
    nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), -1), -1)
    smoothed = (1.0 - label_smoothing) * nll - label_smoothing * ops.mean(log_probs, axis=-1)
    tokens = ops.sum(mask)
    cross_entropy = ops.sum(nll * mask) / tokens
    coverage = ops.sum(weights * ops.expand_dims(mask, -1), axis=1)
    regulariser = ops.mean(ops.square(1.0 - coverage))
    objective = ops.sum(smoothed * mask) / tokens + attention_weight * regulariser
    hits = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), logits.dtype)
    return objective, cross_entropy, ops.sum(hits * mask) / tokens


@keras.saving.register_keras_serializable(package="scancap")
class CaptionDecoder(keras.Model):
    """Region projection + embedding + attention GRU + deep readout, trained by teacher forcing.

    Inputs: backbone grids (B, 49, 1280) and the caption shifted right (B, T) starting with
    <start>. Outputs: word logits (B, T, vocab) and attention weights (B, T, 49).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        units: int = 512,
        attention_units: int = 512,
        projection_dim: int = 512,
        dropout: float = 0.4,
        label_smoothing: float = 0.1,
        attention_weight: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.units = vocab_size, embedding_dim, units
        self.attention_units, self.projection_dim = attention_units, projection_dim
        self.dropout_rate, self.label_smoothing = dropout, label_smoothing
        self.attention_weight = attention_weight
        self.project = layers.Dense(projection_dim, activation="relu", name="project")
        self.init_state = layers.Dense(units, activation="tanh", name="init_state")
        self.embedding = layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.cell = AttentionGRUCell(
            units, attention_units, projection_dim, embedding_dim, name="attention_gru"
        )
        self.rnn = layers.RNN(self.cell, return_sequences=True, name="rnn")
        # Deep output (Show, Attend and Tell eq. 7): logits = L_o(E y + L_h h + L_z z).
        self.readout_state = layers.Dense(embedding_dim, name="readout_state")
        self.readout_context = layers.Dense(embedding_dim, use_bias=False, name="readout_context")
        self.classifier = layers.Dense(vocab_size, name="classifier")
        self.dropout = layers.Dropout(dropout)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "cross_entropy", "accuracy")
        }

    def encode(self, grids):
        """Per image, once: projected regions, their attention keys and the initial state."""
        features = self.project(ops.cast(grids, self.compute_dtype))
        keys = self.cell.attention.keys(features)
        return features, keys, self.init_state(ops.mean(features, axis=1))

    def readout(self, embedded, state, context, training=False):
        hidden = embedded + self.readout_state(state) + self.readout_context(context)
        return self.classifier(self.dropout(hidden, training=training))

    def call(self, inputs, training=False):
        grids, tokens = inputs
        features, keys, state = self.encode(grids)
        embedded = self.embedding(tokens)
        outputs = self.rnn(
            self.dropout(embedded, training=training),
            initial_state=[state, features, keys],
            training=training,
        )
        states, context, weights = ops.split(
            outputs, [self.units, self.units + self.projection_dim], axis=-1
        )
        return self.readout(embedded, states, context, training), weights

    def step(self, tokens, state, features, keys):
        """One greedy/beam step: (log-probabilities (B, vocab), new state, weights (B, 49))."""
        embedded = self.embedding(tokens)
        output, _ = self.cell(embedded, [state, features, keys])
        state, context, weights = ops.split(
            output, [self.units, self.units + self.projection_dim], axis=-1
        )
        return ops.log_softmax(self.readout(embedded, state, context)), state, weights

    def build(self, input_shape=None) -> None:
        _build_all(
            (self.project, (None, GRID_CELLS, FEATURE_CHANNELS)),
            (self.init_state, (None, self.projection_dim)),
            (self.embedding, (None, None)),
            (self.rnn, (None, None, self.embedding_dim)),
            (self.readout_state, (None, self.units)),
            (self.readout_context, (None, self.projection_dim)),
            (self.classifier, (None, self.embedding_dim)),
        )

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def _update(self, targets, logits, weights) -> tuple:
        objective, cross_entropy, accuracy = caption_loss(
            targets, logits, weights, self.label_smoothing, self.attention_weight
        )
        for name, value in zip(self.trackers, (objective, cross_entropy, accuracy), strict=True):
            self.trackers[name].update_state(value)
        return objective

    def train_step(self, data):
        (grids, tokens), targets = data
        with tf.GradientTape() as tape:
            logits, weights = self((grids, tokens), training=True)
            objective = self._update(targets, logits, weights)
        gradients = tape.gradient(objective, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        (grids, tokens), targets = data
        logits, weights = self((grids, tokens), training=False)
        self._update(targets, logits, weights)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "attention_units": self.attention_units,
            "projection_dim": self.projection_dim,
            "dropout": self.dropout_rate,
            "label_smoothing": self.label_smoothing,
            "attention_weight": self.attention_weight,
        }


# --- decoding -------------------------------------------------------------------------------------


@dataclass
class Hypothesis:
    """One decoded caption: word ids ending with <end>, length-normalised log-probability, and
    the attention weights (one 49-vector per generated token)."""

    tokens: list[int]
    score: float
    attention: np.ndarray


@dataclass
class Decoder:
    """Compiled encode/step functions of one CaptionDecoder or of an ensemble of them.

    An ensemble's step averages its members' next-word probabilities (and attention maps);
    its regions, keys and states are tuples with one entry per member. Each is one graph, so
    the members run in a single call per step (one trace per batch size at most).
    """

    models: tuple[CaptionDecoder, ...]
    encode: Callable
    step: Callable

    @classmethod
    def of(cls, *models: CaptionDecoder) -> Decoder:
        if len(models) == 1:
            encode, step = models[0].encode, models[0].step
        else:
            encode, step = partial(_ensemble_encode, models), partial(_ensemble_step, models)
        compiled = (tf.function(f, reduce_retracing=True) for f in (encode, step))
        return cls(models, *compiled)


def _ensemble_encode(models: Sequence[CaptionDecoder], grids):
    """(regions, keys, states), each a tuple with one entry per member."""
    return tuple(zip(*(model.encode(grids) for model in models), strict=True))


def _ensemble_step(models: Sequence[CaptionDecoder], tokens, states, features, keys):
    """The log of the members' mean next-word probabilities, their states, mean attention."""
    inputs = zip(states, features, keys, strict=True)
    outputs = [model.step(tokens, *x) for model, x in zip(models, inputs, strict=True)]
    log_probs = tf.stack([log_p for log_p, _, _ in outputs])
    mean_log_probs = tf.reduce_logsumexp(log_probs, axis=0) - float(np.log(len(models)))
    weights = tf.reduce_mean(tf.stack([w for _, _, w in outputs]), axis=0)
    return mean_log_probs, tuple(state for _, state, _ in outputs), weights


def _gather_rows(tensors, rows: np.ndarray):
    """tf.gather along the first axis of one tensor or of each tensor of a nested structure."""
    return tf.nest.map_structure(lambda tensor: tf.gather(tensor, rows), tensors)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest values of each row, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _renormalised(log_probs: np.ndarray) -> np.ndarray:
    """Log-probabilities over the tokens still allowed (the others are -inf): sums to one."""
    top = log_probs.max(axis=-1, keepdims=True)
    return log_probs - top - np.log(np.exp(log_probs - top).sum(axis=-1, keepdims=True))


def beam_search(
    decoder: Decoder,
    grids: np.ndarray,
    vocab: Vocabulary,
    beam: int = 3,
    length_penalty: float = LENGTH_PENALTY,
    constraint: GroundedDecoding | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search; per image, `beam` hypotheses sorted by normalised score, best first.

    State is kept for (images x beam) rows. Candidates are ranked by log P / length^alpha, so
    finished short captions do not win just by having fewer negative terms. Probabilities are
    renormalised over the tokens that may be generated (<pad>, <start> and <unk> never are,
    and at max_len only <end> is), which is also the distribution SCST trains. A finished beam
    carries on with one zero-cost padding step, keeping its score and length. At max_len only
    <end> is allowed, so every hypothesis ends with it. beam=1 is greedy decoding. A
    `constraint` (grounding) adds its own per-image, per-step mask of forbidden words.
    """
    n, vocab_size = len(grids), len(vocab)
    features, keys, state = decoder.encode(np.asarray(grids).reshape(n, GRID_CELLS, -1))
    never = np.full(vocab_size, -np.inf, np.float32)
    never[vocab.start + 1 :] = 0.0  # <pad>, <start> are never generated
    never[vocab.unk] = -np.inf  # nor is "unknown word"
    said = constraint.start(n) if constraint is not None else None
    only_end = np.full(vocab_size, -np.inf, np.float32)
    only_end[vocab.end] = 0.0
    finished_row = np.full(vocab_size, -np.inf, np.float32)
    finished_row[vocab.pad] = 0.0

    scores = np.zeros((n, 1), np.float32)  # summed log-probabilities, one beam to start
    lengths = np.zeros((n, 1), np.int32)
    finished = np.zeros((n, 1), bool)
    words = np.full((n, 1), vocab.start, np.int32)
    history = np.zeros((n, 1, 0), np.int32)
    attention = np.zeros((n, 1, 0, GRID_CELLS), np.float32)
    for t in range(vocab.max_len + 1):
        width = words.shape[1]
        log_probs, state, weights = decoder.step(words.reshape(-1), state, features, keys)
        log_probs = np.asarray(log_probs).reshape(n, width, vocab_size)
        allowed = only_end if t == vocab.max_len else never
        if constraint is not None and t < vocab.max_len:
            allowed = allowed + constraint.mask(t, said, words)
        log_probs = _renormalised(log_probs + allowed)
        log_probs = np.where(finished[..., None], finished_row, log_probs)
        candidates = scores[..., None] + log_probs
        new_lengths = lengths + ~finished
        normalised = candidates / new_lengths[..., None].astype(np.float32) ** length_penalty
        best = _top_k(normalised.reshape(n, -1), min(beam, width * vocab_size))
        source, words = np.divmod(best, vocab_size)
        rows = np.arange(n)[:, None]
        scores = candidates.reshape(n, -1)[rows, best]
        lengths = new_lengths[rows, source]
        words = words.astype(np.int32)
        history = np.concatenate([history[rows, source], words[..., None]], axis=2)
        step_weights = np.asarray(weights).reshape(n, width, 1, GRID_CELLS)[rows, source]
        attention = np.concatenate([attention[rows, source], step_weights], axis=2)
        finished = finished[rows, source] | (words == vocab.end)
        if constraint is not None:
            said = constraint.advance(said, source, words)
        flat = (rows * width + source).reshape(-1)
        state = _gather_rows(state, flat)
        if t == 0:  # every image now has `beam` rows: widen the per-image tensors once
            features, keys = _gather_rows(features, flat), _gather_rows(keys, flat)
        if finished.all():
            break
    normalised = scores / lengths.astype(np.float32) ** length_penalty
    return [
        [
            Hypothesis(
                history[i, b, : lengths[i, b]].tolist(),
                float(normalised[i, b]),
                attention[i, b, : lengths[i, b]],
            )
            for b in np.argsort(-normalised[i], kind="stable")
        ]
        for i in range(n)
    ]


SCENE_MIN_SCORE = 0.5  # a detection named in a caption built from evidence


def agreed_objects(objects: Sequence[Detection], evidence: Evidence | None) -> list[Detection]:
    """The detections the person and animal detectors agree with (all, without grounding):
    a rose the COCO detector calls a person is not one where the person detector sees none."""
    if evidence is None:
        return list(objects)
    return [item for item in objects if evidence.supports(item.label)]


def from_evidence(caption: Caption, evidence: Evidence, objects: Sequence[Detection]) -> Caption:
    """The caption rebuilt from its photo's evidence (`scene_sentence`) where there is any:
    objects the detector is sure of (SCENE_MIN_SCORE) and the grounding agrees with; its
    attention maps are uniform (no word was decoded from a region)."""
    sure = [item for item in objects if item.score >= SCENE_MIN_SCORE]
    supported = agreed_objects(sure, evidence)
    sentence = scene_sentence(evidence.scene(), supported)
    if sentence is None:
        return caption
    words = sentence.split()
    maps = np.full((len(words) + 1, 7, 7), 1 / GRID_CELLS, np.float32)
    return Caption(sentence, caption.score, words, maps, caption.tags, True, caption.objects)


# --- the shipped captioner ------------------------------------------------------------------------


@dataclass
class Caption:
    """A caption, its normalised log-probability and one 7x7 attention map per word (+ <end>)."""

    text: str
    score: float
    words: list[str]
    attention: np.ndarray  # (len(words) + 1, 7, 7)
    tags: list[dict] = field(default_factory=list)  # grounded keywords with probabilities
    from_evidence: bool = False  # built from the evidence (`scancap.caption.scene`), not decoded
    objects: list[Detection] | None = None  # the photo's detections the grounding agrees with


def save_decoder(model: CaptionDecoder, vocab: Vocabulary, out: Path, weights: bool = True) -> None:
    """Weights + JSON config + vocabulary: the backbone is not part of the shipped captioner."""
    out.mkdir(parents=True, exist_ok=True)
    if weights:
        model.save_weights(out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(model.get_config(), indent=2))
    vocab.save(out / VOCABULARY_FILE)


def load_decoder(model_dir: Path) -> tuple[CaptionDecoder, Vocabulary]:
    missing = [
        f for f in (WEIGHTS_FILE, CONFIG_FILE, VOCABULARY_FILE) if not (model_dir / f).exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"{model_dir} lacks {', '.join(missing)}: run `scancap train captioner` to create it"
        )
    model = CaptionDecoder.from_config(json.loads((model_dir / CONFIG_FILE).read_text()))
    model.build()
    model.load_weights(model_dir / WEIGHTS_FILE)
    return model, Vocabulary.load(model_dir / VOCABULARY_FILE)


def load_decoders(model_dirs: Sequence[Path]) -> tuple[Decoder, Vocabulary]:
    """One decoder, or an ensemble of several trained on the same vocabulary."""
    loaded = [load_decoder(model_dir) for model_dir in model_dirs]
    vocab = loaded[0][1]
    for model_dir, (_, other) in zip(model_dirs, loaded, strict=True):
        if other.words != vocab.words:
            raise ValueError(f"{model_dir}: its vocabulary differs from {model_dirs[0]}'s")
    return Decoder.of(*(model for model, _ in loaded)), vocab


def read_decoding(model_dir: Path) -> dict:
    """DECODING_FILE of a captioner (beam, length exponent, ensemble members); {} without one."""
    path = model_dir / DECODING_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def member_dirs(model_dir: Path, decoding: dict | None = None) -> list[Path]:
    """The decoder folders of a captioner: its ensemble's members, or the folder itself."""
    members = (read_decoding(model_dir) if decoding is None else decoding).get("members", [])
    return [model_dir / name for name in members] or [model_dir]


@cache
def shared_backbone() -> tuple[keras.Model, tuple[np.ndarray, np.ndarray]]:
    """MobileNetV2's grid extractor and its ImageNet head (kernel, bias), loaded once per
    process and shared by every Captioner and by the feature cache: loading and tracing it
    takes seconds, and nothing trains it (training reads cached grids)."""
    from scancap.backbones.mobilenet_v2 import CLASSIFIER_LAYER, FEATURE_LAYER, load_backbone

    full = load_backbone(include_top=True)
    kernel, bias = full.get_layer(CLASSIFIER_LAYER).get_weights()
    grids = keras.Model(full.input, full.get_layer(FEATURE_LAYER).output)
    grids.compile(jit_compile=False)  # XLA is slower on this CPU
    return grids, (kernel, bias)


@cache
def shared_lite0() -> keras.Model:
    """EfficientNet-Lite0 as the classifier computes its top grid, loaded once per process and
    shared by every Captioner (grounding's person detector reads it; nothing trains it)."""
    from scancap.backbones.efficientnet_lite import load_lite0

    model = load_lite0()
    model.compile(jit_compile=False)  # XLA is slower on this CPU
    return model


def extract_grids(backbone, images: list[np.ndarray], batch_size: int = 32) -> Iterator[np.ndarray]:
    """(n, 49, 1280) float32 grids of uint8 RGB images, one batch at a time."""
    for first in range(0, len(images), batch_size):
        batch = np.stack([to_model_input(image) for image in images[first : first + batch_size]])
        grids = np.asarray(backbone.predict_on_batch(batch))
        yield grids.reshape(len(batch), GRID_CELLS, -1)


class Captioner:
    """Captions for backbone grids or for images; the backbone loads on first image.

    `decoder` is one trained decoder or an ensemble; `length_penalty` is beam search's alpha:
    captions are ranked by log P / length^alpha.
    """

    def __init__(
        self,
        decoder: Decoder,
        vocab: Vocabulary,
        length_penalty: float = LENGTH_PENALTY,
        grounding_dir: Path | None = None,
    ) -> None:
        self.decoder, self.vocab, self.length_penalty = decoder, vocab, length_penalty
        self.grounding_dir = grounding_dir  # holds GROUNDING_FILE; None: captions are free
        self._backbone: keras.Model | None = None
        self._imagenet_head: tuple[np.ndarray, np.ndarray] | None = None
        self._grounding: Grounding | None = None
        self._lite0: keras.Model | None = None

    @classmethod
    def of(
        cls, model: CaptionDecoder, vocab: Vocabulary, length_penalty: float = LENGTH_PENALTY
    ) -> Captioner:
        """A captioner around one decoder being trained or tuned."""
        return cls(Decoder.of(model), vocab, length_penalty)

    @classmethod
    def load(cls, model_dir: Path | None = None) -> Captioner:
        model_dir = Path(model_dir or MODEL_DIR)
        decoding = read_decoding(model_dir)
        decoder, vocab = load_decoders(member_dirs(model_dir, decoding))
        grounded = (model_dir / GROUNDING_FILE).exists()
        return cls(
            decoder,
            vocab,
            decoding.get("length_penalty", LENGTH_PENALTY),
            model_dir if grounded else None,
        )

    @property
    def backbone(self) -> keras.Model:
        """The grid extractor; its ImageNet head (pooled grid -> 1,000 logits) is kept aside."""
        if self._backbone is None:
            self._backbone, self._imagenet_head = shared_backbone()
        return self._backbone

    @property
    def imagenet_head(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel (1280, 1000), bias): the backbone's ImageNet classifier."""
        if self._imagenet_head is None:
            _ = self.backbone
        return self._imagenet_head

    @property
    def grounding(self) -> Grounding | None:
        if self._grounding is None and self.grounding_dir is not None:
            self._grounding = Grounding.load(self.grounding_dir, self.imagenet_head)
        return self._grounding

    @property
    def needs_lite0(self) -> bool:
        """Whether grounded captions need the photos' Lite0 grids (`describe`'s lite0)."""
        return self.grounding is not None and self.grounding.needs_lite0

    def describe(
        self,
        grids: np.ndarray,
        beam: int = 3,
        batch_size: int = 100,
        ground: bool = True,
        lite0: np.ndarray | None = None,
        grain: Sequence[float] | None = None,
        objects: np.ndarray | None = None,
        detections: Sequence[Sequence[Detection]] | None = None,
    ) -> list[Caption]:
        """Best caption of each grid ((N, 7, 7, 1280) or (N, 49, 1280)), with attention maps.

        With grounding (shipped with the captioner, `ground` not False), words naming a person
        or an animal the photo does not support are forbidden, and each caption gets tags. A
        grounding whose detectors read Lite0 features (`needs_lite0`) also needs `lite0`, the
        photos' (N, 49, 1280) EfficientNet-Lite0 grids (`lite0_grids`; the pipeline has them
        from the classifier), and one that holds grainy photos to other thresholds
        (`needs_grain`) needs `grain`, each photo's σ̂ as it came in (`grain_of`); one with an
        object rule (`needs_objects`) needs `objects`, the (N, 80) best score of each COCO class
        in each photo (`detect`). Where the grounding has a fallback score and a grounded
        caption scores below it, the caption is built from the evidence instead: the scene
        concept and `detections`, each photo's COCO objects (`detect`), counted.
        """
        grounding = self.grounding if ground else None
        captions = []
        for first in range(0, len(grids), batch_size):
            batch = np.asarray(grids[first : first + batch_size], np.float32)
            part = None if lite0 is None else lite0[first : first + batch_size]
            noise = None if grain is None else grain[first : first + batch_size]
            seen = None if objects is None else objects[first : first + batch_size]
            evidence = grounding.evidence(batch, part, noise, seen) if grounding else None
            constraint = GroundedDecoding(evidence, self.vocab.words) if evidence else None
            hypotheses = beam_search(
                self.decoder, batch, self.vocab, beam, self.length_penalty, constraint
            )
            for i, best in enumerate(h[0] for h in hypotheses):
                words = [self.vocab.words[j] for j in best.tokens[:-1]]
                maps = best.attention.reshape(-1, 7, 7)
                if constraint is not None:
                    agreed = constraint.agree(i, words)  # may drop the first word, "a"
                    maps = maps[len(words) - len(agreed) :]
                    words = agreed
                tags = evidence[i].tags() if evidence else []
                found = None
                if detections is not None:
                    found = agreed_objects(detections[first + i], evidence[i] if evidence else None)
                caption = Caption(detokenize(words), best.score, words, maps, tags, objects=found)
                if evidence and self.falls_back(caption):
                    caption = from_evidence(caption, evidence[i], found or [])
                captions.append(caption)
        return captions

    def falls_back(self, caption: Caption) -> bool:
        """Whether a grounded caption scores too low to keep (the grounding's fallback)."""
        cutoff = self.grounding.fallback_score if self.grounding else None
        return cutoff is not None and caption.score < cutoff

    @property
    def needs_grain(self) -> bool:
        """Whether grounded captions need the photos' grain (`describe`'s grain)."""
        return self.grounding is not None and self.grounding.reads_grain

    @property
    def needs_objects(self) -> bool:
        """Whether grounded captions need the photos' COCO class scores (`describe`'s objects)."""
        return self.grounding is not None and self.grounding.reads_objects

    @staticmethod
    def detect(images: Sequence[np.ndarray]) -> tuple[list[list[Detection]], np.ndarray]:
        """Each uint8 photo's COCO objects and its (80,) best score per class (the shipped
        detector, `scancap.caption.detector`)."""
        return load_detector().detect(images)

    @staticmethod
    def grain_of(images: Sequence[np.ndarray]) -> list[float]:
        """Each uint8 image's grain σ̂ (0-255), measured as restoration measures it, after the
        pixel averaging the backbones' resize applies (`averaged_to_model_scale`); NaN for an
        image too small to measure (it is held to the clean thresholds)."""
        return [_grain(image) for image in images]

    def describe_images(self, images: Sequence[np.ndarray], beam: int = 3) -> list[Caption]:
        """`describe` for uint8 RGB images: their grids, and their Lite0 features, grain and
        COCO class scores if needed."""
        lite0 = self.lite0_grids(images) if self.needs_lite0 else None
        grain = self.grain_of(images) if self.needs_grain else None
        detections, objects = self.detect(images) if self.needs_objects else (None, None)
        grids = self.grids(images)
        return self.describe(
            grids, beam, lite0=lite0, grain=grain, objects=objects, detections=detections
        )

    def caption_features(self, grids: np.ndarray, beam: int = 3) -> list[tuple[str, float]]:
        """(caption, normalised log-probability) per backbone grid, decoded freely: a grid
        alone cannot feed a grounding that also reads the classifier's Lite0 grid."""
        return [(c.text, c.score) for c in self.describe(grids, beam, ground=False)]

    def grids(self, images: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """(N, 49, 1280) backbone grids of uint8 RGB images (any size: resized to 224).

        Backbone batches of 8 run as fast as larger ones on CPU, and keep the activations of
        the first layers (112x112x96 floats per image) from pushing memory past 1.5 GB.
        """

        return np.concatenate(list(extract_grids(self.backbone, list(images), batch_size)))

    def lite0_grids(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """(N, 49, 1280) EfficientNet-Lite0 top grids of uint8 RGB images, as the classifier
        computes them (its backbone loads on first use: `scancap caption` has no classifier)."""
        if self._lite0 is None:
            self._lite0 = shared_lite0()
        chunks = [
            self._lite0.predict_on_batch(
                np.stack([to_model_input(image) for image in images[i : i + batch_size]])
            )
            for i in range(0, len(images), batch_size)
        ]
        grids = np.concatenate([np.asarray(c, np.float32) for c in chunks])
        return grids.reshape(len(grids), -1, grids.shape[-1])

    def caption_images(
        self, images: Sequence[np.ndarray], beam: int = 3
    ) -> list[tuple[str, float]]:
        """(caption, normalised log-probability) per uint8 RGB image."""
        if not images:
            return []
        return [(c.text, c.score) for c in self.describe_images(images, beam)]
