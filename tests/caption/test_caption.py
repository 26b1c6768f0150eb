"""Captioning: tokeniser, beam search, training smoke test, shipped model, metrics, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from scancap.caption.files import caption_summary
from scancap.caption.metrics import bleu, caption_scores
from scancap.caption.model import (
    GRID_CELLS,
    CaptionDecoder,
    Captioner,
    Decoder,
    Vocabulary,
    beam_search,
    tokenize,
)
from scancap.caption.train import Recipe
from scancap.cli import main
from scancap.io import load_image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_PHOTO = SAMPLES / "photo_4495885281_fe2a3b671d.jpg"


@pytest.fixture(scope="module")
def shipped() -> Captioner:
    return Captioner.load()


def test_tokeniser_normalises_and_round_trips() -> None:
    assert tokenize("A dog's red T-shirt , near 2 cats .") == [
        "a", "dog", "'s", "red", "t-shirt", "near", "2", "cats",
    ]  # fmt: skip
    vocab = Vocabulary.build(["A dog's red T-shirt .", "a dog runs", "A DOG runs !"], min_count=2)
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert set(vocab.words[4:]) == {"a", "dog", "runs"}
    ids = vocab.encode("A dog runs .")
    assert ids[0] == vocab.start and ids[-1] == vocab.end
    assert vocab.decode(ids) == "a dog runs"
    assert vocab.encode("a cat")[2] == vocab.unk
    assert vocab.decode([*vocab.encode("a dog"), vocab.ids["runs"]]) == "a dog"  # stops at <end>


def test_vocabulary_saves_and_loads(tmp_path: Path) -> None:
    vocab = Vocabulary.build(["a dog runs left", "a dog runs right"], min_count=1)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.words == vocab.words and loaded.max_len == vocab.max_len
    swapped = vocab.left_right_swap()[vocab.encode("left right")]
    assert vocab.decode(swapped) == "right left"


def test_beam_search_on_a_tiny_model_returns_finished_sorted_hypotheses() -> None:
    vocab = Vocabulary.build(["a dog runs on the grass", "a cat sleeps"], min_count=1)
    model = CaptionDecoder(
        len(vocab), embedding_dim=8, units=16, attention_units=8, projection_dim=8
    )
    model.build()
    grids = np.random.default_rng(0).random((5, GRID_CELLS, 1280), np.float32)
    results = beam_search(Decoder.of(model), grids, vocab, beam=3)
    assert len(results) == 5
    for hypotheses in results:
        assert len(hypotheses) == 3
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        for hypothesis in hypotheses:
            assert hypothesis.tokens[-1] == vocab.end
            assert vocab.end not in hypothesis.tokens[:-1]
            assert len(hypothesis.tokens) <= vocab.max_len + 1
            assert hypothesis.attention.shape == (len(hypothesis.tokens), GRID_CELLS)
            np.testing.assert_allclose(hypothesis.attention.sum(axis=1), 1.0, rtol=1e-4)
    greedy = beam_search(Decoder.of(model), grids, vocab, beam=1)
    assert all(len(h) == 1 and h[0].tokens[-1] == vocab.end for h in greedy)


def _tiny_decoder(vocab: Vocabulary, seed: int) -> CaptionDecoder:
    keras.utils.set_random_seed(seed)
    model = CaptionDecoder(
        len(vocab), embedding_dim=8, units=16, attention_units=8, projection_dim=8
    )
    model.build()
    return model


def test_ensemble_averages_its_members_next_word_probabilities() -> None:
    vocab = Vocabulary.build(["a dog runs on the grass", "a cat sleeps"], min_count=1)
    models = [_tiny_decoder(vocab, seed) for seed in (1, 2)]
    members = [Decoder.of(model) for model in models]
    grids = np.random.default_rng(0).random((4, GRID_CELLS, 1280), np.float32)
    ensemble = Decoder.of(*models)
    words = np.full(4, vocab.start, np.int32)
    log_probs, _, weights = ensemble.step(words, *_state_first(ensemble.encode(grids)))
    alone = [member.step(words, *_state_first(member.encode(grids))) for member in members]
    mean = (np.exp(alone[0][0]) + np.exp(alone[1][0])) / 2
    np.testing.assert_allclose(np.exp(log_probs), mean, rtol=1e-5)
    np.testing.assert_allclose(weights, (alone[0][2] + alone[1][2]) / 2, rtol=1e-5)
    assert not np.allclose(alone[0][0], alone[1][0])  # the members do differ


def _state_first(encoded: tuple) -> tuple:
    """encode() gives (features, keys, state); step() takes (state, features, keys)."""
    features, keys, state = encoded
    return state, features, keys


def test_ensemble_of_one_decoder_twice_decodes_like_the_decoder() -> None:
    vocab = Vocabulary.build(["a dog runs on the grass", "a cat sleeps"], min_count=1)
    model = _tiny_decoder(vocab, 3)
    grids = np.random.default_rng(1).random((3, GRID_CELLS, 1280), np.float32)
    alone = beam_search(Decoder.of(model), grids, vocab, beam=3)
    twice = beam_search(Decoder.of(model, model), grids, vocab, beam=3)
    for single, double in zip(alone, twice, strict=True):
        assert [h.tokens for h in single] == [h.tokens for h in double]
        np.testing.assert_allclose([h.score for h in single], [h.score for h in double], rtol=1e-5)


# The shipped recipe with a narrow decoder: training runs the same steps in about half the time
# (the decoder's width is not what the smoke test checks).
SMOKE_RECIPE = Recipe(embedding_dim=16, units=32, attention_units=16, projection_dim=16)


def test_training_smoke_on_50_images_then_an_ensemble_of_two(tmp_path: Path) -> None:
    """Both phases on 50 images, then `train captioner-ensemble` with that model and a second
    seed (one test, so that the trained model is shared whichever worker runs it)."""
    from scancap.caption.train import train_captioner

    out, smoke_cache = tmp_path / "captioner", tmp_path / "cache"
    smoke = {"cache_dir": smoke_cache, "limit": 50, "epochs": 1, "recipe": SMOKE_RECIPE}
    record = train_captioner(out, **smoke, scst_epochs=1, progress=False)
    assert record["train_images"] == 50 and record["epochs_run"] == 1
    history = pd.read_csv(out / "history.csv")
    assert np.isfinite(history[["loss", "val_loss", "val_cider"]].to_numpy()).all()
    scst = pd.read_csv(out / "scst_history.csv")
    assert scst["epoch"].tolist() == [0, 1] and record["scst"]["epochs_run"] == 1
    assert np.isfinite(scst.loc[1, ["train_reward", "loss", "dev_CIDEr-D"]].to_numpy(float)).all()
    assert not (out / "scst_state.json").exists()  # a finished run leaves no resume state
    tried = [row["length_penalty"] for row in record["decoding"]["search"]]
    assert record["decoding"]["length_penalty"] in tried and len(tried) > 1
    captioner = Captioner.load(out)
    assert captioner.length_penalty == record["decoding"]["length_penalty"]
    grids = np.zeros((2, 7, 7, 1280), np.float32)
    captions = captioner.caption_features(grids, beam=2)
    assert len(captions) == 2 and all(isinstance(text, str) for text, _ in captions)

    second = tmp_path / "seed-2"
    train_captioner(second, **smoke, scst_epochs=0, seed=2, progress=False)
    ensemble = tmp_path / "ensemble"
    argv = ["train", "captioner-ensemble", str(out), str(second), "--out", str(ensemble)]
    assert main([*argv, "--limit", "50", "--cache", str(smoke_cache), "--quiet"]) == 0
    decoding = json.loads((ensemble / "decoding.json").read_text())
    assert decoding["members"] == ["member-1", "member-2"]
    assert (ensemble / "member-2" / "decoder.weights.h5").exists()
    assert not (ensemble / "decoder.weights.h5").exists()
    captioner = Captioner.load(ensemble)
    assert len(captioner.decoder.models) == 2
    assert captioner.length_penalty == decoding["length_penalty"]
    [(caption, score)] = captioner.caption_images([load_image(SAMPLE_PHOTO)], beam=2)
    assert isinstance(caption, str) and np.isfinite(score)


def test_shipped_model_captions_a_sample_photo(shipped: Captioner) -> None:
    [caption] = shipped.describe_images([load_image(SAMPLE_PHOTO)], beam=3)
    words = tokenize(caption.text)
    assert 1 <= len(words) <= shipped.vocab.max_len
    if not caption.from_evidence:  # a decoded caption says only the decoder's words
        assert len(words) >= 3 and all(word in shipped.vocab.ids for word in words)
    assert np.isfinite(caption.score) and caption.score < 0


def test_shipped_model_gives_attention_maps(shipped: Captioner) -> None:
    [caption] = shipped.describe_images([load_image(SAMPLE_PHOTO)], beam=3)
    assert caption.attention.shape == (len(caption.words) + 1, 7, 7)


def test_bleu_matches_a_hand_computed_value() -> None:
    # Precisions 5/6, 3/5, 2/4, 1/3; same length, no brevity penalty: BLEU-4 = (1/12)^(1/4).
    value = bleu([["the cat sat on the mat"]], ["the cat sat on a mat"])
    assert value == pytest.approx((1 / 12) ** 0.25, rel=1e-6)
    assert bleu([["the cat sat on the mat"]], ["the cat sat on the mat"]) == pytest.approx(1.0)


def test_caption_cli_writes_a_row_per_file_and_reports_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE_PHOTO, folder / "sub" / "photo.jpg")
    (folder / "broken.png").write_text("not an image\n")
    csv = tmp_path / "captions.csv"
    assert main(["caption", str(folder), "--out", str(csv), "--beam", "2", "--quiet"]) == 1
    rows = pd.read_csv(csv, keep_default_na=False).set_index("path")
    assert list(rows.columns) == ["caption", "skipped", "error"]
    assert rows.loc["sub/photo.jpg", "caption"] and not rows.loc["sub/photo.jpg", "error"]
    assert rows.loc["broken.png", "error"] and not rows.loc["broken.png", "caption"]
    assert "broken.png" in capsys.readouterr().err

    assert main(["caption", str(folder / "sub"), "--quiet"]) == 0
    path, caption = capsys.readouterr().out.strip().split("\t")
    assert path == "photo.jpg" and caption


def test_caption_cli_skips_non_photos_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    chart = next(SAMPLE_PHOTO.parent.glob("schematic_*"))
    shutil.copy(chart, folder / chart.name)
    shutil.copy(SAMPLE_PHOTO, folder / "photo.jpg")
    csv = tmp_path / "captions.csv"
    assert main(["caption", str(folder), "--out", str(csv), "--quiet"]) == 0
    rows = pd.read_csv(csv, keep_default_na=False).set_index("path")
    assert rows.loc[chart.name, "skipped"].startswith("not a photo: schematic")
    assert not rows.loc[chart.name, "caption"]
    assert rows.loc["photo.jpg", "caption"] and not rows.loc["photo.jpg", "skipped"]
    assert chart.name in capsys.readouterr().err
    assert main(["caption", str(folder), "--out", str(csv), "--all", "--quiet"]) == 0
    rows = pd.read_csv(csv, keep_default_na=False).set_index("path")
    assert rows.loc[chart.name, "caption"] and not rows.loc[chart.name, "skipped"]


def test_the_caption_summary_counts_skipped_and_unreadable_files_apart() -> None:
    rows = [
        {"path": "a.jpg", "caption": "a dog", "skipped": "", "error": ""},
        {"path": "chart.png", "caption": "", "skipped": "not a photo: schematic", "error": ""},
        {"path": "bad.png", "caption": "", "skipped": "", "error": "cannot decode"},
    ]
    assert caption_summary(rows, "out.csv") == (
        "captioned 1/3 images (1 skipped, 1 unreadable) -> out.csv"
    )
    assert caption_summary(rows[:1], None) == "captioned 1/1 images"


@pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs Java")
def test_the_java_tokenizer_leaves_no_noise_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    references = {"a": ["a dog runs on the grass", "a brown dog is running"]}
    scores, _ = caption_scores(references, {"a": "a dog runs on grass"}, meteor=False)
    assert scores["BLEU-1"] > 0.5
    assert "PTBTokenizer" not in capfd.readouterr().err
