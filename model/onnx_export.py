"""Export a trained Keras genre model to ONNX for serving (`python -m model export-onnx --model DIR`).

The graph is built layer by layer with onnx.helper from the Keras network: VGG-16's convolutions (Conv + Relu, with
MaxPool between blocks) on NCHW, then global average pooling, or Flatten after transposing back to NHWC (the order
Keras flattens in), then the dense trunk (Gemm + Relu, Dropout left out) ending in the feature vector and the frozen
pool (the frozen part's output averaged and maximised over the image); the genre head reads both, the era heads
the pool.
Its outputs are model.artifacts.OUTPUTS: genre probabilities (sigmoid), the feature vector, decade
probabilities (softmax), year, rating, and the signature of blocks 4 and 5 (global average pooled) that the poster
detector reads. Every weight goes into one float32 file, model.onnx.data, each tensor at an offset aligned to
ALIGNMENT so that ONNX Runtime can memory-map it. model.onnx.json records the Keras weights it was made from
(model/onnx_model.py refuses the export once they change) and the size and hash of both files. The
export is checked against Keras on posters (a catalog's, or random ones) before it is kept.

Why by hand and not with a converter (tf2onnx): the layout of the weights file is the point. Every tensor sits at a
64 KiB-aligned offset of one external-data file, so ONNX Runtime memory-maps it and all gunicorn workers share one
copy in the page cache (bench/README.md, "Serving memory"); onnx.save_model's external data (onnx 1.23) has no
alignment option, so a converter's output would still have to be rewritten, and a converter would tie the `train`
extra to the TensorFlow and Keras versions it supports. The graph is small (convolutions, pooling, dense layers)."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from catalog.write import staging_directory
from model.artifacts import EXPORT_FILE, OUTPUTS, WEIGHTS_FILE, GenreModel, file_sha256, weights_stamp
from model.onnx_model import (
    INPUT_NAME,
    ONNX_DATA_FILE,
    ONNX_FILE,
    OnnxGenreModel,
    output_shapes,
    session_options,
)

OPSET = 17
IR_VERSION = 8  # what onnx 1.13+ writes for opset 17; every onnxruntime since 1.14 reads it
ALIGNMENT = 64 * 1024  # tensor offsets in the data file: a multiple of every platform's mmap granularity
TOLERANCE = 1e-4  # largest difference from Keras allowed when the export is checked
CHECK_POSTERS = 16
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax", "linear": None}


class ExportError(RuntimeError):
    """A network this exporter cannot translate, or an export that does not reproduce Keras."""


@dataclass
class ExternalWeights:
    """Initializers written one after another into one open file, each starting at a multiple of ALIGNMENT."""

    handle: BinaryIO
    location: str  # the file name recorded in the graph, relative to model.onnx

    def add(self, name: str, array: np.ndarray) -> TensorProto:
        array = np.ascontiguousarray(array, dtype="<f4")
        offset = -(-self.handle.tell() // ALIGNMENT) * ALIGNMENT
        self.handle.write(b"\0" * (offset - self.handle.tell()))
        self.handle.write(array.tobytes())
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", offset), ("length", array.nbytes)):
            tensor.external_data.add(key=key, value=str(value))
        return tensor


@dataclass
class GraphBuilder:
    """Nodes and initializers of the graph being built; each node's output is named after its node."""

    weights: ExternalWeights
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)

    def node(self, op: str, inputs: list[str], name: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.weights.add(name, array))
        return name

    def activation(self, keras_name: str, x: str, name: str) -> str:
        if keras_name not in ACTIVATIONS:
            raise ExportError(
                f"layer {name}: activation {keras_name!r} is not exported (only {', '.join(ACTIVATIONS)})"
            )
        op = ACTIVATIONS[keras_name]
        return x if op is None else self.node(op, [x], name)


def channels_last(config: dict) -> bool:
    return config.get("data_format", "channels_last") == "channels_last"


def conv(builder: GraphBuilder, layer: object, x: str) -> str:
    """Keras Conv2D (kernel (kh, kw, in, out), stride 1, "same" or "valid") -> ONNX Conv on NCHW, and its activation."""
    config = layer.get_config()
    plain = tuple(config["strides"]) == (1, 1) and tuple(config["dilation_rate"]) == (1, 1)
    if not plain or config.get("groups", 1) != 1 or not config["use_bias"] or not channels_last(config):
        raise ExportError(f"layer {layer.name}: only channels-last, stride 1, undilated, ungrouped, biased is exported")
    kernel, bias = layer.get_weights()
    height, width = kernel.shape[:2]
    if config["padding"] == "same" and (height % 2 == 0 or width % 2 == 0):
        raise ExportError(f"layer {layer.name}: 'same' padding needs an odd kernel size")
    pads = [height // 2, width // 2, height // 2, width // 2] if config["padding"] == "same" else [0, 0, 0, 0]
    inputs = [
        x,
        builder.weight(f"{layer.name}/kernel", kernel.transpose(3, 2, 0, 1)),
        builder.weight(f"{layer.name}/bias", bias),
    ]
    y = builder.node("Conv", inputs, f"{layer.name}/conv", kernel_shape=[height, width], pads=pads)
    return builder.activation(config["activation"], y, f"{layer.name}/{config['activation']}")


def max_pool(builder: GraphBuilder, layer: object, x: str) -> str:
    """Keras MaxPooling2D ('valid', so floor) -> ONNX MaxPool (no padding, floor)."""
    config = layer.get_config()
    if config["padding"] != "valid" or not channels_last(config):
        raise ExportError(f"layer {layer.name}: only channels-last 'valid' max pooling is exported")
    return builder.node(
        "MaxPool", [x], layer.name, kernel_shape=list(config["pool_size"]), strides=list(config["strides"])
    )


def flatten(builder: GraphBuilder, layer: object, x: str) -> str:
    """Keras flattens (h, w, c): back to NHWC first, so that the first dense layer's rows match."""
    if not channels_last(layer.get_config()):
        raise ExportError(f"layer {layer.name}: only channels-last flattening is exported")
    nhwc = builder.node("Transpose", [x], f"{layer.name}/to_nhwc", perm=[0, 2, 3, 1])
    return builder.node("Flatten", [nhwc], layer.name, axis=1)


def average_pool(builder: GraphBuilder, layer: object, x: str) -> str:
    pooled = builder.node("GlobalAveragePool", [x], f"{layer.name}/global_average")
    return builder.node("Flatten", [pooled], layer.name, axis=1)


def dense(builder: GraphBuilder, layer: object, x: str) -> str:
    """Keras Dense (kernel (in, out)) -> Gemm with the kernel as is, then its activation."""
    config = layer.get_config()
    if not config["use_bias"]:
        raise ExportError(f"layer {layer.name}: only dense layers with a bias are exported")
    kernel, bias = layer.get_weights()
    inputs = [x, builder.weight(f"{layer.name}/kernel", kernel), builder.weight(f"{layer.name}/bias", bias)]
    y = builder.node("Gemm", inputs, f"{layer.name}/gemm")
    return builder.activation(config["activation"], y, f"{layer.name}/{config['activation']}")


def skip(builder: GraphBuilder, layer: object, x: str) -> str:
    """Layers that do nothing at inference (Dropout, the input)."""
    return x


CONVERTERS: dict[str, Callable[[GraphBuilder, object, str], str]] = {
    "InputLayer": skip,
    "Conv2D": conv,
    "MaxPooling2D": max_pool,
    "Flatten": flatten,
    "GlobalAveragePooling2D": average_pool,
    "Dense": dense,
    "Dropout": skip,
}


def build_graph(model: GenreModel, weights: ExternalWeights) -> onnx.GraphProto:
    """The Keras network as an ONNX graph: poster (n, height, width, 3) VGG-preprocessed -> OUTPUTS. The layers are
    walked in the network's known shape: VGG-16's convolutions in order, the trunk in order, the frozen pool of the
    preset's blocks (with the ImageNet copy of block 5 where it reads it), the genre head from the feature vector and
    the frozen pool, the era heads from the pool, and the signature from blocks 4 and 5."""
    from model.network import (
        BASE_OUTPUT,
        BLOCK5_CONVS,
        ERA_HEADS,
        FEATURES_LAYER,
        FROZEN_POOL_LAYER,
        GENRE_INPUTS_LAYER,
        GENRES_LAYER,
        IMAGENET_PREFIX,
        SIGNATURE_BLOCKS,
        frozen_pool_blocks,
        trunk_layer_names,
    )

    builder = GraphBuilder(weights)
    network = model.network
    x = builder.node("Transpose", [INPUT_NAME], "to_nchw", perm=[0, 3, 1, 2])
    named: dict[str, str] = {}
    base_layers = [layer for layer in network.layers if layer.name.startswith("block")]
    for layer in base_layers + [network.get_layer(name) for name in trunk_layer_names(model.preset)]:
        x = named[layer.name] = convert(builder, layer, x)
    if BASE_OUTPUT not in named:
        raise ExportError(f"the network has no {BASE_OUTPUT} layer: extend model/onnx_export.py")

    def pooled(block: str, op: str) -> str:  # the signature and the frozen pool may pool the same block
        name = f"{block}/{op}/flat"
        if name not in named:
            named[name] = builder.node("Flatten", [builder.node(op, [named[block]], f"{block}/{op}")], name)
        return named[name]

    pool_inputs = []
    for block in frozen_pool_blocks(model.preset):
        if block.startswith(IMAGENET_PREFIX):  # the frozen copy of block 5, on block 4's output
            x = named["block4_pool"]
            for name in BLOCK5_CONVS:
                x = named[IMAGENET_PREFIX + name] = convert(builder, network.get_layer(IMAGENET_PREFIX + name), x)
        pool_inputs += [pooled(block, "GlobalAveragePool"), pooled(block, "GlobalMaxPool")]
    pool = builder.node("Concat", pool_inputs, FROZEN_POOL_LAYER, axis=1)
    genre_inputs = builder.node("Concat", [named[FEATURES_LAYER], pool], GENRE_INPUTS_LAYER, axis=1)
    builder.node("Identity", [convert(builder, network.get_layer(GENRES_LAYER), genre_inputs)], GENRES_LAYER)
    builder.node("Identity", [named[FEATURES_LAYER]], "features")
    for head in ERA_HEADS:
        builder.node("Identity", [convert(builder, network.get_layer(head), pool)], head)
    builder.node("Concat", [pooled(block, "GlobalAveragePool") for block in SIGNATURE_BLOCKS], "signature", axis=1)
    width, height = model.input_size
    signature_size = sum(network.get_layer(block).output.shape[-1] for block in SIGNATURE_BLOCKS)
    shapes = output_shapes(model.description, signature_size)
    return helper.make_graph(
        builder.nodes,
        f"posterbench_{model.preset.name}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", height, width, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shapes[name]]) for name in OUTPUTS],
        initializer=builder.initializers,
    )


def convert(builder: GraphBuilder, layer: object, x: str) -> str:
    kind = type(layer).__name__
    if kind not in CONVERTERS:
        raise ExportError(f"layer {layer.name} ({kind}) is not exported: extend model/onnx_export.py")
    return CONVERTERS[kind](builder, layer, x)


def write_model(model: GenreModel, onnx_path: Path, data_path: Path) -> None:
    """model.onnx and its data file, at `onnx_path` and `data_path`: the graph names the data file ONNX_DATA_FILE,
    the name it has beside model.onnx."""
    with data_path.open("wb") as handle:
        graph = build_graph(model, ExternalWeights(handle, ONNX_DATA_FILE))
    proto = helper.make_model(
        graph, producer_name="posterbench", opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx_path.write_bytes(proto.SerializeToString())


@dataclass(frozen=True)
class ExportCheck:
    """How the export compared with Keras: on which posters, and the largest absolute differences of the genre
    probabilities, the feature vectors, and the rest (decade probabilities, poster scores, and the year and rating
    relative to their scale)."""

    posters: str  # what they were, e.g. "16 random posters"
    probabilities: float
    features: float
    evoked: float

    @property
    def largest(self) -> float:
        return max(self.probabilities, self.features, self.evoked)


def random_posters(size: tuple[int, int], count: int, seed: int = 0) -> np.ndarray:
    """`count` posters of random pixels, `size` (width, height)."""
    return np.random.default_rng(seed).integers(0, 256, (count, size[1], size[0], 3), dtype=np.uint8)


def catalog_posters(catalog_dir: Path, size: tuple[int, int], count: int) -> np.ndarray:
    """`count` posters of the catalog, spread evenly over it."""
    from catalog import read_catalog
    from model.images import load_posters

    catalog = read_catalog(catalog_dir)
    rows = np.unique(np.linspace(0, len(catalog.movies) - 1, count).round().astype(int))
    return load_posters([catalog.poster_path(catalog.movies[row]) for row in rows], size, progress=False)


def compare(keras_model: GenreModel, exported: OnnxGenreModel, posters: np.ndarray, described: str) -> ExportCheck:
    """The largest absolute differences between Keras's and the export's probabilities and features."""
    expected, actual = keras_model.predict(posters), exported.predict(posters)

    def largest(name: str, scale: float = 1.0) -> float:
        return float(np.abs(getattr(expected, name) - getattr(actual, name)).max()) / scale

    evoked = max(largest("decades"), largest("year", 2000.0), largest("rating", 10.0))
    return ExportCheck(described, largest("genres"), largest("features"), evoked)


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXPORT_STAGING_PREFIX = f".{ONNX_FILE}."
"""Where a new float32 export is written and checked in the model directory, as model.quantization.STAGING_PREFIX
is for the int8 one."""


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back until the block is done, then raised (in the main thread, where Python handles
    signals): the renames that replace one export by another are not stopped between two files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda got, frame: received.append(got)) for number in HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def replace_export(stage: Path, model_dir: Path, names: tuple[str, ...]) -> None:
    """Move the files `names` of an export from `stage` over those of `model_dir`, in that order (its record last:
    until it is replaced, the previous record names other files, which OnnxGenreModel.load refuses), Ctrl-C held back
    until all are moved."""
    with signals_deferred():
        for name in names:
            os.replace(stage / name, model_dir / name)


def export_onnx(
    model_dir: str | Path, catalog_dir: Path | None = None, check_posters: int = CHECK_POSTERS
) -> ExportCheck:
    """Write model.onnx, model.onnx.data and model.onnx.json into `model_dir` from its Keras model and check the
    export against Keras on `check_posters` posters of `catalog_dir` (random ones without a catalog). The files are
    written and checked in a staging folder (EXPORT_STAGING_PREFIX) and replace the previous export only once whole
    and checked: an export stopped half-way (Ctrl-C, a full disk) or one that does not reproduce Keras leaves the
    previous export as it was."""
    model_dir = Path(model_dir)
    model = GenreModel.load(model_dir)  # says which file is missing or damaged
    source = weights_stamp(model_dir / WEIGHTS_FILE)
    if catalog_dir is None:
        posters, described = random_posters(model.input_size, check_posters), f"{check_posters} random posters"
    else:
        posters = catalog_posters(Path(catalog_dir), model.input_size, check_posters)
        described = f"{len(posters)} posters of {catalog_dir}"
    with staging_directory(model_dir, EXPORT_STAGING_PREFIX) as stage:  # one per export; a killed one's removed first
        write_model(model, stage / ONNX_FILE, stage / ONNX_DATA_FILE)
        onnx.checker.check_model(str(stage / ONNX_FILE))  # by path: the data file is found beside it
        session = ort.InferenceSession(str(stage / ONNX_FILE), session_options(), providers=["CPUExecutionProvider"])
        check = compare(model, OnnxGenreModel(session, model.description, model.detector), posters, described)
        if not check.largest <= TOLERANCE:
            raise ExportError(f"the export of {model_dir} differs from Keras by {check.largest:.2g} on {described}")
        write_description(stage, source, check)
        replace_export(stage, model_dir, (ONNX_DATA_FILE, ONNX_FILE, EXPORT_FILE))
    return check


def write_description(model_dir: Path, source: dict, check: ExportCheck) -> None:
    """model.onnx.json in `model_dir` (the staging folder): the weights exported, the size and hash of each file
    written beside it, and the check."""
    files = {
        name: {"size": (model_dir / name).stat().st_size, "sha256": file_sha256(model_dir / name)}
        for name in (ONNX_FILE, ONNX_DATA_FILE)
    }
    description = {
        "source": source,
        "files": files,
        "opset": OPSET,
        "onnx": onnx.__version__,
        "checked_on": check.posters,
        "largest_difference": {
            "probabilities": check.probabilities,
            "features": check.features,
            "evoked": check.evoked,
        },
    }
    (model_dir / EXPORT_FILE).write_text(json.dumps(description, indent=2) + "\n")
