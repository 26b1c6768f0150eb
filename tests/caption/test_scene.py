"""Captions built from evidence: the scene concept and the counted objects, nothing else."""

from __future__ import annotations

import numpy as np

from scancap.caption.detector import Detection
from scancap.caption.grounding import Evidence
from scancap.caption.model import Caption, from_evidence
from scancap.caption.scene import scene_sentence


def seen(label: str, score: float = 0.6) -> Detection:
    return Detection(label, score, (0.1, 0.1, 0.5, 0.5))


def test_a_scene_sentence_names_the_concept_and_counts_the_objects() -> None:
    assert scene_sentence("lighthouse", []) == "a lighthouse"
    assert scene_sentence("palace", [seen("person")] * 3) == "a palace with three people"
    two_cars_a_bus = [seen("car"), seen("bus"), seen("car")]
    assert scene_sentence(None, two_cars_a_bus) == "two cars and a bus"
    crowd = [seen("person")] * 12 + [seen("umbrella"), seen("dog"), seen("bench")]
    assert scene_sentence("plaza", crowd) == "a plaza with many people, a bench and a dog"
    assert scene_sentence("orange", [seen("orange")]) == "an orange"  # not "with an orange"
    assert scene_sentence(None, []) is None


def test_a_caption_from_evidence_keeps_only_what_the_grounding_supports() -> None:
    """The rose the COCO detector calls a person: the person detector sees none, so the
    sentence does not say one."""
    present = {"person": False, "animal": False}
    rose = Evidence({"person": 0.1, "animal": 0.1}, present, [("daisy", 0.2)])
    text = "a pink is in the water"
    tags = [{"tag": "daisy", "p": 0.2}]
    decoded = Caption(text, -2.5, text.split(" "), np.zeros((7, 7, 7)), tags)
    assert from_evidence(decoded, rose, [seen("person", 0.69)]) is decoded  # nothing to say
    harbour = Evidence({"person": 0.9, "animal": 0.1}, {"person": True, "animal": False},
                       [("dock", 0.7)])  # fmt: skip
    built = from_evidence(decoded, harbour, [seen("boat"), seen("boat"), seen("person")])
    assert built.text == "a dock with two boats and a person" and built.from_evidence
    assert built.attention.shape == (len(built.words) + 1, 7, 7)
    assert built.tags == decoded.tags and built.score == decoded.score


def test_a_caption_scoring_below_the_fallback_is_rebuilt_from_the_photo() -> None:
    """With the fallback score above any caption's, the old golfer's portrait is described by
    its evidence: the person the detectors agree on, and the scene where one is sure."""
    from pathlib import Path

    from scancap.caption.model import Captioner
    from scancap.io import load_image

    captioner = Captioner.load()
    grounding = captioner.grounding
    saved = grounding.fallback_score
    portrait = load_image(
        Path(__file__).resolve().parents[2] / "samples" / "photo_Old_Tom_Morris.png"
    )
    try:
        grounding.fallback_score = 0.0  # every normalised log-probability is below 0
        (caption,) = captioner.describe_images([portrait])
    finally:
        grounding.fallback_score = saved
    assert caption.from_evidence and "person" in caption.words, caption.text
    assert caption.attention.shape == (len(caption.words) + 1, 7, 7)
