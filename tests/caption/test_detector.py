"""The COCO object detector: the TF.js reader, box decoding, suppression, and NanoDet on photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scancap.backbones.tfjs_graph import graph_function, read_tfjs_graph
from scancap.caption.detector import (
    DISTANCE_BINS,
    INPUT_SIZE,
    MIN_SCORE,
    STRIDES,
    Detection,
    count_tags,
    decode,
    load_detector,
    non_maximum_suppression,
)
from scancap.caption.objects import COCO_CLASSES, OBJECT_GROUPS, mentioned_groups
from scancap.io import load_image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _attr_type(name: str) -> dict:
    return {"type": name}


def _write_tfjs_model(folder: Path, kernel: np.ndarray, bias: np.ndarray) -> Path:
    """A TF.js graph model of y = reshape(x @ kernel + bias, (-1,)): the kernel stored as
    float16 (quantised), the bias as float32, the shape as int32 where the graph wants int64
    (as the TF.js converter writes them)."""
    shape = np.array([-1], np.int32)
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": _attr_type("DT_FLOAT")}},
        {"name": "kernel", "op": "Const", "attr": {"dtype": _attr_type("DT_FLOAT"), "value": {}}},
        {"name": "bias", "op": "Const", "attr": {"dtype": _attr_type("DT_FLOAT"), "value": {}}},
        {"name": "shape", "op": "Const", "attr": {"dtype": _attr_type("DT_INT64"), "value": {}}},
        {"name": "product", "op": "MatMul", "input": ["x", "kernel"],
         "attr": {"T": _attr_type("DT_FLOAT")}},
        {"name": "sum", "op": "AddV2", "input": ["product", "bias"],
         "attr": {"T": _attr_type("DT_FLOAT")}},
        {"name": "y", "op": "Reshape", "input": ["sum", "shape"],
         "attr": {"T": _attr_type("DT_FLOAT"), "Tshape": _attr_type("DT_INT64")}},
    ]  # fmt: skip
    weights = [
        {"name": "kernel", "shape": list(kernel.shape), "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "bias", "shape": list(bias.shape), "dtype": "float32"},
        {"name": "shape", "shape": [1], "dtype": "int32"},
    ]  # fmt: skip
    data = kernel.astype(np.float16).tobytes() + bias.astype(np.float32).tobytes()
    (folder / "group1-shard1of1.bin").write_bytes(data + shape.tobytes())
    record = {
        "format": "graph-model",
        "modelTopology": {"node": nodes, "versions": {"producer": 1}},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": weights}],
    }
    path = folder / "model.json"
    path.write_text(json.dumps(record))
    return path


def test_a_tfjs_graph_model_runs_as_tensorflow_with_its_float16_weights(tmp_path: Path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    graph = read_tfjs_graph(_write_tfjs_model(tmp_path, kernel, bias))
    half = next(node for node in graph.node if node.name == "kernel/half")
    assert tf.as_dtype(half.attr["dtype"].type) == tf.float16  # stored at half the size
    run = graph_function(graph, "x:0", ["y:0"])
    x = rng.normal(size=(2, 4)).astype(np.float32)
    (y,) = run(tf.constant(x))
    expected = (x @ kernel.astype(np.float16).astype(np.float32) + bias).reshape(-1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_a_model_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "layers-model", "modelTopology": {}}))
    with pytest.raises(ValueError, match="not a TF.js graph model"):
        read_tfjs_graph(path)


def _empty_outputs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    cells = [(INPUT_SIZE // s) ** 2 for s in STRIDES]
    scores = [np.zeros((n, len(COCO_CLASSES)), np.float32) for n in cells]
    distributions = [np.full((n, 4 * DISTANCE_BINS), -20.0, np.float32) for n in cells]
    return scores, distributions


def test_a_cell_decodes_to_the_box_its_distance_distributions_say() -> None:
    scores, distributions = _empty_outputs()
    side = INPUT_SIZE // 16
    cell = 5 * side + 10  # row 5, column 10 at stride 16: centre (168, 88) px
    scores[1][cell, COCO_CLASSES.index("car")] = 0.8
    for edge, bins in enumerate((2, 1, 3, 4)):  # left, top, right, bottom, in strides
        distributions[1][cell, edge * DISTANCE_BINS + bins] = 20.0
    boxes, kept, classes = decode(scores, distributions, min_score=0.5)
    assert list(classes) == [COCO_CLASSES.index("car")] and kept[0] == pytest.approx(0.8)
    expected = np.array([168 - 32, 88 - 16, 168 + 48, 88 + 64]) / INPUT_SIZE
    np.testing.assert_allclose(boxes[0], expected, atol=1e-4)


def test_suppression_keeps_the_best_of_overlapping_boxes_of_one_class_only() -> None:
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.1, 0.1, 0.5, 0.5],
                      [0.6, 0.6, 0.9, 0.9]])  # fmt: skip
    scores = np.array([0.6, 0.9, 0.7, 0.5])
    classes = np.array([2, 2, 0, 2])  # two cars on one spot, a person there, a car elsewhere
    assert list(non_maximum_suppression(boxes, scores, classes)) == [1, 2, 3]


def test_counts_read_as_a_person_would_write_them() -> None:
    objects = [Detection("person", 0.9, (0, 0, 1, 1))] * 3 + [Detection("car", 0.5, (0, 0, 1, 1))]
    assert count_tags(objects) == "3 people, 1 car"
    assert count_tags([Detection("bus", 0.6, (0, 0, 1, 1))] * 2) == "2 buses"
    assert count_tags([]) == ""


def test_every_object_group_word_belongs_to_one_group_and_coco_names_its_classes() -> None:
    words = [w for group in OBJECT_GROUPS.values() for w in group.words]
    assert len(words) == len(set(words))
    assert all(c in COCO_CLASSES for g in OBJECT_GROUPS.values() for c in g.coco)
    assert mentioned_groups("Two dogs run on the grass near a car and a dog.") == [
        "dog",
        "grass",
        "car",
    ]


def test_the_shipped_detector_finds_the_person_in_an_old_portrait_and_nothing_on_a_tower() -> None:
    detector = load_detector()
    portrait, tower = (load_image(SAMPLES / name) for name in
                       ("photo_Old_Tom_Morris.png", "photo_Building.png"))  # fmt: skip
    (people, nothing), best = detector.detect([portrait, tower])
    assert [d.label for d in people] == ["person"] and people[0].score > 0.6
    x0, y0, x1, y1 = people[0].box
    assert 0 <= x0 < 0.5 < x1 <= 1 and 0 <= y0 < 0.5 < y1 <= 1  # he stands in the middle
    assert nothing == [] and best[1].max() < MIN_SCORE
    assert best.shape == (2, len(COCO_CLASSES))
    assert best[0, COCO_CLASSES.index("person")] == pytest.approx(people[0].score)


def test_conversion_writes_the_same_bytes_every_time(tmp_path: Path) -> None:
    """`make detector` is reproducible: the GraphDef is serialised deterministically."""
    from scancap.caption.detector import convert

    rng = np.random.default_rng(1)
    model = _write_tfjs_model(tmp_path, rng.normal(size=(4, 3)), rng.normal(size=3))
    first = convert(model, tmp_path / "a.pb").read_bytes()
    assert first == convert(model, tmp_path / "b.pb").read_bytes()
