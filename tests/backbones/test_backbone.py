"""The converted MobileNetV2 backbone and the torch-free state_dict reader."""

from __future__ import annotations

import collections
import io
import pickle
import sys
import types
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from skimage import data

from scancap.backbones import inputs, mobilenet_v2, torch_checkpoint

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    return mobilenet_v2.load_backbone(include_top=True)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return torch_checkpoint.read_torch_state_dict(mobilenet_v2.torchvision_weights_path())


# --- the shipped model ----------------------------------------------------------------------------


def test_shipped_model_classifies_chelsea_as_a_cat(classifier: keras.Model) -> None:
    assert inputs.imagenet_top_k(classifier, data.chelsea(), k=1)[0] in CAT_CLASSES


def test_shipped_model_classifies_coffee_as_espresso(classifier: keras.Model) -> None:
    assert inputs.imagenet_top_k(classifier, data.coffee(), k=1) == [ESPRESSO]


def test_backbone_without_top_gives_the_7x7x1280_grid() -> None:
    features = mobilenet_v2.load_backbone()
    image = inputs.to_model_input(data.chelsea())[None]
    assert tuple(features(image, training=False).shape) == (1, 7, 7, 1280)


def test_stem_pads_symmetrically_like_torch(
    classifier: keras.Model, state_dict: dict[str, np.ndarray]
) -> None:
    """Keras' "same" would pad only bottom/right at stride 2 and shift every output pixel."""
    stem = keras.Model(classifier.input, classifier.get_layer("features_0_0").output)
    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    x = (image[0] - mobilenet_v2.IMAGENET_MEAN) / mobilenet_v2.IMAGENET_STD
    x = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    weight = state_dict["features.0.0.weight"]  # OIHW
    expected = sum(
        x[i : i + 223 : 2, j : j + 223 : 2] @ weight[:, :, i, j].T
        for i in range(3)
        for j in range(3)
    )
    got = keras.ops.convert_to_numpy(stem(image, training=False))[0]
    assert got.shape == (112, 112, 32)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_to_model_input_resizes_to_unit_floats() -> None:
    image = inputs.to_model_input(data.coffee(), size=96)
    assert image.shape == (96, 96, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


# --- reading .pth files ---------------------------------------------------------------------------


def test_reads_torchvision_state_dict(state_dict: dict[str, np.ndarray]) -> None:
    assert len(state_dict) == 262  # 314 entries less 52 num_batches_tracked
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["classifier.1.weight"].dtype == np.float32
    assert not any(key.endswith("num_batches_tracked") for key in state_dict)


class _Storage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key, self.values = key, values


class _Tensor:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple:
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, _Storage):
            torch = sys.modules["torch"]
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.values.size)
        return None


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins named torch / torch._utils, so pickle writes the globals a real .pth holds."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)


def _write_zip_checkpoint(path: Path, obj: object, storages: list[_Storage]) -> Path:
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.values.tobytes())
    return path


@pytest.mark.usefixtures("fake_torch")
def test_reads_zip_checkpoint_with_offsets_and_strides(tmp_path: Path) -> None:
    storage = _Storage("0", np.arange(13, dtype="<f4"))
    obj = collections.OrderedDict(
        weight=_Tensor(storage, 1, (3, 4), (4, 1)),
        transposed=_Tensor(storage, 1, (4, 3), (1, 4)),
        bias=_Tensor(storage, 0, (2,), (1,)),
    )
    loaded = torch_checkpoint.read_torch_state_dict(
        _write_zip_checkpoint(tmp_path / "ok.pth", obj, [storage])
    )
    expected = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(loaded["weight"], expected)
    np.testing.assert_array_equal(loaded["transposed"], expected.T)
    np.testing.assert_array_equal(loaded["bias"], [0.0, 1.0])


@pytest.mark.usefixtures("fake_torch")
def test_refuses_a_view_past_its_storage(tmp_path: Path) -> None:
    storage = _Storage("0", np.zeros(4, dtype="<f4"))
    obj = collections.OrderedDict(weight=_Tensor(storage, 0, (4, 4), (4, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        torch_checkpoint.read_torch_state_dict(
            _write_zip_checkpoint(tmp_path / "bad.pth", obj, [storage])
        )


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_refuses_pickles_that_run_code(tmp_path: Path, layout: str) -> None:
    marker = tmp_path / "pwned"
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # os.system("touch ...")
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", evil)
    else:
        header = (
            torch_checkpoint._LEGACY_MAGIC,
            torch_checkpoint._LEGACY_PROTOCOL,
            {"little_endian": True},
        )
        path.write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in header) + evil)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle os\.system"):
        torch_checkpoint.read_torch_state_dict(path)
    assert not marker.exists()
