"""Self-critical fine-tuning: the CIDEr-D reward, the baseline, sampling and the update."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from scancap.caption.metrics import caption_scores
from scancap.caption.model import GRID_CELLS, CaptionDecoder, Vocabulary, tokenize
from scancap.caption.scst import CiderD, leave_one_out_advantages, make_sampler, make_update

REFERENCES = {
    "dog": ["A brown dog runs on the grass .", "A dog running in a field", "The dog plays outside"],
    "kids": ["Two children play in the water .", "Kids splash in a pool", "Two kids swimming"],
    "bike": ["A man rides a bike down a hill", "A cyclist on a mountain trail", "A biker rides"],
}
CANDIDATES = {"dog": "a dog runs on the grass", "kids": "a man in the water", "bike": "a dog"}


def test_cider_reward_matches_the_coco_evaluation_code() -> None:
    _, per_image = caption_scores(REFERENCES, CANDIDATES, meteor=False, ptb=False)
    reward = CiderD({key: [tokenize(t) for t in refs] for key, refs in REFERENCES.items()})
    mine = [reward.score(key, tokenize(text)) for key, text in CANDIDATES.items()]
    np.testing.assert_allclose(mine, per_image["CIDEr-D"].to_numpy(), rtol=1e-9, atol=1e-12)
    assert mine[0] > mine[1] > mine[2] >= 0  # a near-copy beats a half match beats a wrong one


def test_leave_one_out_baseline_centres_each_image() -> None:
    rewards = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    advantages = leave_one_out_advantages(rewards)
    np.testing.assert_allclose(advantages[0], [-1.5, 0.0, 1.5])
    np.testing.assert_allclose(advantages[1], 0.0)


@pytest.fixture()
def tiny() -> tuple[CaptionDecoder, Vocabulary]:
    keras.utils.set_random_seed(0)
    vocab = Vocabulary.build(["a dog runs on the grass", "a cat sleeps"], min_count=1)
    model = CaptionDecoder(
        len(vocab), embedding_dim=8, units=16, attention_units=8, projection_dim=8
    )
    model.build()
    return model, vocab


def test_samples_end_with_end_token_then_padding(tiny) -> None:
    model, vocab = tiny
    grids = np.random.default_rng(0).random((20, GRID_CELLS, 1280), np.float32)
    tokens = np.asarray(make_sampler(model, vocab)(grids, np.array([3, 4], np.int32)))
    assert tokens.shape == (20, vocab.max_len + 1)
    for row in tokens:
        end = int(np.flatnonzero(row == vocab.end)[0])
        assert not np.isin(row[:end], [vocab.pad, vocab.start, vocab.unk]).any()
        assert (row[end + 1 :] == vocab.pad).all()
    assert len({tuple(row) for row in tokens}) > 1  # sampled, not one greedy caption


def test_positive_advantage_makes_a_caption_more_likely(tiny) -> None:
    model, vocab = tiny
    grids = np.random.default_rng(1).random((2, GRID_CELLS, 1280), np.float32)
    caption = np.array(vocab.encode("a dog runs")[1:], np.int32)  # words then <end>
    tokens = np.stack([caption, caption])

    def log_likelihood() -> float:
        inputs = np.concatenate([[[vocab.start]] * 2, tokens[:, :-1]], axis=1)
        logits, _ = model((grids, inputs))
        log_probs = keras.ops.log_softmax(logits, axis=-1).numpy()
        return float(np.take_along_axis(log_probs, tokens[..., None], -1).sum())

    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    update = make_update(model, optimizer, vocab)
    before = log_likelihood()
    for _ in range(5):
        update(grids, tokens, np.ones(2, np.float32))
    raised = log_likelihood()
    for _ in range(10):
        update(grids, tokens, -np.ones(2, np.float32))
    assert raised > before + 0.5
    assert log_likelihood() < raised


def test_self_critical_training_stops_at_its_budget_and_resumes(tiny, tmp_path) -> None:
    from scancap.caption.scst import STATE_FILE, ScstData, ScstRecipe, self_critical

    model, vocab = tiny
    sentences = ["a dog runs on the grass", "a cat sleeps", "the dog sleeps on a cat"]
    keys = [f"image{i}" for i in range(6)]
    refs = {key: [sentences[i % 3], sentences[(i + 1) % 3]] for i, key in enumerate(keys)}
    data = ScstData(
        np.random.default_rng(2).random((6, GRID_CELLS, 1280)).astype(np.float16),
        train_rows=np.arange(4),
        train_keys=keys[:4],
        train_refs={key: refs[key] for key in keys[:4]},
        dev_rows=np.arange(4, 6),
        dev_refs={key: refs[key] for key in keys[4:]},
    )
    recipe = ScstRecipe(epochs=2, samples=3, images_per_batch=2, patience=5)
    out = tmp_path
    assert self_critical(model, vocab, data, out, recipe, max_seconds=0, progress=False) is None
    assert (out / STATE_FILE).exists()  # stopped after epoch 1, resumable
    history = self_critical(model, vocab, data, out, recipe, progress=False)
    assert history["epoch"].tolist() == [0, 1, 2]
    assert np.isfinite(history.loc[1:, ["train_reward", "loss"]].to_numpy(float)).all()
    assert not (out / STATE_FILE).exists() and (out / "decoder.weights.h5").exists()


def test_flipped_batches_are_rewarded_as_the_unflipped_image() -> None:
    from scancap.caption.data import flip_grids
    from scancap.caption.scst import ScstData, ScstRecipe, _run_epoch

    vocab = Vocabulary.build(["a dog runs left", "a dog runs right", "a cat sits"], min_count=1)
    keys = [f"image{i}" for i in range(20)]
    grids = np.random.default_rng(3).random((20, GRID_CELLS, 1280)).astype(np.float32)
    refs = {key: ["a dog runs right", "a cat sits"] for key in keys}
    data = ScstData(grids, np.arange(20), keys, refs, np.arange(0), {})
    others = {f"other{i}": ["a cat sits"] for i in range(20)}  # so "dog" n-grams weigh > 0
    reward = CiderD({key: [tokenize(t) for t in texts] for key, texts in (refs | others).items()})
    said_left = np.array(vocab.encode("a dog runs left")[1:], np.int32)
    flips = []

    def sample(batch_grids, seed):  # always says "left"; notes whether it saw a mirrored grid
        original = np.repeat(grids[data.train_rows], 2, 0)
        flips.append(not any(np.allclose(batch_grids[0], g) for g in original))
        mirrored = flip_grids(original)
        assert flips[-1] == any(np.allclose(batch_grids[0], g) for g in mirrored)
        return np.tile(said_left, (len(batch_grids), 1))

    recipe = ScstRecipe(samples=2, images_per_batch=1, flip=True)
    mean_reward, _ = _run_epoch(
        data, reward, sample, lambda *_: 0.0, recipe, vocab, np.random.default_rng(0), False
    )
    right = reward.score("image0", tokenize("a dog runs right"))
    left = reward.score("image0", tokenize("a dog runs left"))
    assert 0 < np.mean(flips) < 1 and right > left
    assert mean_reward == pytest.approx(np.mean([right if f else left for f in flips]))
