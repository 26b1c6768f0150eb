"""A TensorFlow.js graph model read into a TensorFlow GraphDef, without tensorflowjs.

A TF.js graph model is a `model.json` whose `modelTopology` is a GraphDef written as JSON, with
its constants' values taken out into binary shards listed in `weightsManifest` (each weight's
name, shape, dtype and, for quantised weights, the stored dtype). Reading it back is putting each
value into its Const node. The converter narrows int64 to int32; the nodes' own `dtype` attrs
keep the original types, and the values are cast back to them. Weights stored as float16 stay
float16 in the GraphDef, followed by a Cast to float32 (half the file, the same outputs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

GRAPH_KEYS = ("node", "versions", "library")


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, tuple[np.ndarray, bool]]:
    """Weight name -> (its value, whether it was stored as float16), from the shards beside
    `model_json`, read in manifest order."""
    weights: dict[str, tuple[np.ndarray, bool]] = {}
    for group in manifest:
        data = b"".join((model_json.parent / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            stored = np.dtype(entry.get("quantization", {}).get("dtype", entry["dtype"]))
            if stored not in (np.dtype(entry["dtype"]), np.dtype("float16")):
                raise ValueError(f"{entry['name']}: {stored} quantisation is not supported")
            count = int(np.prod(entry["shape"], dtype=np.int64))
            value = np.frombuffer(data, stored, count, offset).reshape(entry["shape"])
            offset += count * stored.itemsize
            weights[entry["name"]] = (value, stored == np.float16)
        if offset != len(data):
            raise ValueError(f"{model_json}: the shards hold {len(data)} bytes, read {offset}")
    return weights


def read_tfjs_graph(model_json: str | Path) -> tf.compat.v1.GraphDef:
    """The GraphDef of a TF.js graph model (`model.json` and its shards beside it)."""
    model_json = Path(model_json)
    record = json.loads(model_json.read_text())
    if record.get("format") != "graph-model":
        raise ValueError(f"{model_json}: not a TF.js graph model ({record.get('format')!r})")
    topology = {k: v for k, v in record["modelTopology"].items() if k in GRAPH_KEYS}
    graph = json_format.ParseDict(topology, tf.compat.v1.GraphDef())
    weights = read_weights(model_json, record["weightsManifest"])
    casts = []
    for node in graph.node:
        if node.op != "Const" or node.name not in weights:
            continue
        value, half = weights[node.name]
        dtype = tf.as_dtype(node.attr["dtype"].type) if node.attr["dtype"].type else None
        if half:
            casts.append(_cast_to_float32(node.name))
            node.name += "/half"
            dtype = tf.float16
        value = value.astype((dtype or tf.as_dtype(value.dtype)).as_numpy_dtype)
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    graph.node.extend(casts)
    return graph


def _cast_to_float32(name: str) -> tf.compat.v1.NodeDef:
    """A Cast node named `name` reading `name/half`: the float16 weight's old name and role."""
    node = tf.compat.v1.NodeDef(name=name, op="Cast", input=[f"{name}/half"])
    node.attr["SrcT"].type = tf.float16.as_datatype_enum
    node.attr["DstT"].type = tf.float32.as_datatype_enum
    node.attr["Truncate"].b = False
    return node


def graph_function(graph: tf.compat.v1.GraphDef, inputs: str, outputs: list[str]):
    """A concrete function running `graph` from the tensor `inputs` to the tensors `outputs`."""

    def imported() -> None:
        tf.compat.v1.import_graph_def(graph, name="")

    wrapped = tf.compat.v1.wrap_function(imported, [])
    find = wrapped.graph.get_tensor_by_name
    return wrapped.prune(find(inputs), [find(name) for name in outputs])
