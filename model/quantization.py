"""The int8 form of a model's ONNX export and the check that decides whether the app serves it (`python -m model
export-onnx`, which `make onnx` runs; `--int8-only` quantizes an existing float32 export again).

Quantization: ONNX Runtime's static quantization (onnxruntime.quantization.quantize_static) of the float32 export
(model.onnx): QDQ format, the convolutions' weights signed 8-bit per output channel, their inputs and outputs
unsigned 8-bit (u8s8, the fast path of AVX-512 VNNI and AVX2), with MaxPool between them kept in 8 bits. Relu is
quantized with them, which folds it into the convolution's output range: each convolution's output is quantized once,
on [0, max], where leaving Relu out quantizes it twice, first on the signed pre-activation range (half the levels
for the values kept, and a dequantize-requantize pair per layer: on the real posters' model, 75 % more error in the
feature vector and 10 % more time). The activation ranges are calibrated (MinMax: the smallest and largest value
seen) on CALIBRATION_POSTERS catalog posters drawn from the model's training and validation splits, never from its
held-out test split. The dense layers (the trunk to the feature vector, the genre, decade, year and rating heads), the
pooling and the signature stay in float32: they are a small share of the time, and the feature vector and the heads
are what the check compares.

The check (model/int8_check.py) compares it with the float32 export on the held-out posters.

Files, beside the float32 export: model.int8.onnx (the graph, with the small tensors), model.int8.onnx.data (every
tensor of EXTERNAL_BYTES or more at a 64 KiB-aligned offset, memory-mapped as the float32 export's is) and
model.int8.onnx.json, written last: the float32 export it was made from, the size and hash of both files, the
quantization and calibration settings, and the check with its figures, passed or not. model/onnx_model.py serves
the int8 export only when that check passed (choose_precision).

The inputs are checked before any file is touched (the operator types, the held-out and calibration posters), and
the three files are written and checked in a staging folder beside them (`.model.int8.onnx.<random>.partial`, on
the same file system: catalog.write's staging_directory), then renamed over the previous ones only once all three
are whole: a refused, failed or interrupted export leaves the previous one and its record as they were, and the
workers serving it keep the data file they memory-mapped (a rename, never a rewrite in place)."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from catalog import Catalog, read_catalog
from catalog.write import staging_directory
from model.artifacts import file_sha256
from model.images import load_posters, preprocess
from model.index import available_cores, predict_catalog
from model.int8_check import (
    Int8Check,
    Int8ExportError,
    Thresholds,
    checked_held_out,
    compare,
    float32_catalog,
)
from model.onnx_export import ALIGNMENT, replace_export
from model.onnx_model import (
    EXPORT_FILES,
    INPUT_NAME,
    INT8_DATA_FILE,
    INT8_EXPORT_FILE,
    INT8_FILE,
    INT8_FILES,
    ONNX_FILE,
    PREPACK_LIMIT,
    OnnxGenreModel,
    read_export,
)
from model.split import SPLIT_FILE, Split

CALIBRATION_POSTERS = 256
CALIBRATION_BATCH = 32
CALIBRATION_SEED = 0
EXTERNAL_BYTES = 4096
"""Tensors of at least this many bytes go into model.int8.onnx.data; smaller ones (scales, zero points, small
biases) stay in the graph file, where 64 KiB of alignment each would cost more than they weigh."""
STAGING_PREFIX = f".{INT8_FILE}."
"""The start of the folder's name, in the model directory, where a new int8 export is written and checked before its
files replace the previous ones (catalog.write.staging_directory: one per export, removed when it ends, whatever the
outcome, and a killed export's removed by the next)."""


@dataclass(frozen=True)
class QuantizationSettings:
    """What quantize_static is asked for; recorded in model.int8.onnx.json."""

    format: str = "QDQ"
    activations: str = "QUInt8"
    weights: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = False  # VNNI's u8s8 products do not saturate; 7-bit weights only cost accuracy
    calibration: str = "MinMax"
    op_types: tuple[str, ...] = ("Conv", "Relu", "MaxPool")
    nodes_to_exclude: tuple[str, ...] = ()


class PosterReader:
    """onnxruntime.quantization's CalibrationDataReader over catalog posters: batches of VGG-preprocessed posters,
    each batch decoded when it is asked for."""

    def __init__(self, paths: list[Path], size: tuple[int, int], batch: int = CALIBRATION_BATCH) -> None:
        self.batches = iter([paths[start : start + batch] for start in range(0, len(paths), batch)])
        self.size = size

    def get_next(self) -> dict[str, np.ndarray] | None:
        paths = next(self.batches, None)
        return None if paths is None else {INPUT_NAME: preprocess(load_posters(paths, self.size, progress=False))}


def calibration_ids(
    catalog: Catalog, model_dir: Path, count: int, seed: int = CALIBRATION_SEED
) -> tuple[list[str], str]:
    """`count` catalog movies to calibrate on, drawn (seeded) from the model's training and validation splits when
    the catalog holds them, else from the whole catalog (another catalog than the model's: none of its movies was
    trained on), and a phrase saying which."""
    pool, described = [movie.imdb_id for movie in catalog.movies], f"{catalog.directory}"
    split_path = model_dir / SPLIT_FILE
    if split_path.is_file():
        split = Split.load(split_path)
        known = [imdb_id for imdb_id in split.train + split.validation if imdb_id in catalog]
        if known:
            pool, described = sorted(known), f"the training and validation splits of {catalog.directory}"
    chosen = np.random.default_rng(seed).choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[row] for row in sorted(chosen)], described


def quantizable_op_types() -> tuple[str, ...]:
    """The operator types ONNX Runtime's static quantizer quantizes (its QDQ and QOperator registries, which
    quantize_static quantizes all of when given none)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return tuple(sorted(set(QDQRegistry) | set(QLinearOpsRegistry)))


def check_op_names(op_types: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse (Int8ExportError) an empty list of operator types or one that ONNX Runtime's quantizer does not know;
    returns the ones it knows."""
    allowed = quantizable_op_types()
    if not op_types:
        raise Int8ExportError(f"no operator type to quantize is named: name some of {', '.join(allowed)}")
    unknown = [op for op in op_types if op not in allowed]
    if unknown:
        raise Int8ExportError(
            f"ONNX Runtime's quantizer does not quantize {', '.join(unknown)}: the operator types it quantizes are "
            f"{', '.join(allowed)}"
        )
    return allowed


def check_op_types(op_types: tuple[str, ...], model_dir: Path, nodes_to_exclude: tuple[str, ...] = ()) -> None:
    """Refuse operator types that quantize_static would not quantize in the float32 export of `model_dir`: none,
    unknown to it, or absent from the graph (Int8ExportError, naming the ones allowed); and nodes to leave in float32
    that the graph does not hold (quantize_static ignores them silently)."""
    allowed = check_op_names(op_types)
    graph = onnx.load(str(model_dir / ONNX_FILE), load_external_data=False).graph
    names = [node.name for node in graph.node]
    unknown_nodes = [name for name in nodes_to_exclude if name not in names]
    if unknown_nodes:
        example = next((node.name for node in graph.node if node.op_type in op_types), names[0] if names else "?")
        raise Int8ExportError(
            f"{model_dir / ONNX_FILE} has no node called {', '.join(unknown_nodes)} to leave in float32 (its nodes are "
            f"named like {example})"
        )
    present = {node.op_type for node in graph.node}
    if not present & set(op_types):
        raise Int8ExportError(
            f"{model_dir / ONNX_FILE} has no {', '.join(op_types)} node, so nothing would be quantized: it has "
            f"{', '.join(sorted(present & set(allowed)))}"
        )


@contextmanager
def quieter_quantizer() -> Iterator[None]:
    """onnxruntime.quantization logs a warning on the root logger when the model was not pre-processed (symbolic
    shape inference, graph optimisation): our graph has its shapes and nothing to fold; silence that line only."""

    class Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-process" not in record.getMessage()

    quiet = Filter()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def quantize(
    model_dir: Path,
    paths: list[Path],
    size: tuple[int, int],
    settings: QuantizationSettings,
    onnx_path: Path,
    data_path: Path,
) -> int:
    """The float32 export of `model_dir` quantized (quantize_static, calibrated on the posters at `paths`) into
    `onnx_path` and `data_path`, its big tensors aligned as the float32 export's are; returns the bytes of the float32
    dense weights left in it (what a session that pre-packs copies besides the int8 convolutions)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="posterbench-int8-") as scratch:
        quantized = Path(scratch) / "model.onnx"
        with quieter_quantizer():
            quantize_static(
                str(model_dir / ONNX_FILE),
                str(quantized),
                PosterReader(paths, size),
                quant_format=getattr(QuantFormat, settings.format),
                op_types_to_quantize=list(settings.op_types),
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=getattr(QuantType, settings.activations),
                weight_type=getattr(QuantType, settings.weights),
                nodes_to_exclude=list(settings.nodes_to_exclude),
                calibrate_method=getattr(CalibrationMethod, settings.calibration),
            )
        model = onnx.load(str(quantized))
        if not any(node.op_type == "QuantizeLinear" for node in model.graph.node):
            raise Int8ExportError(
                f"quantizing {', '.join(settings.op_types)} left every node of {model_dir / ONNX_FILE} in float32: "
                "name other operator types or exclude fewer nodes"
            )
        write_aligned(model, onnx_path, data_path, INT8_DATA_FILE)
    return dense_float32_bytes(model)


def dense_float32_bytes(model: onnx.ModelProto) -> int:
    """The bytes of the float32 initializers that Gemm and MatMul nodes read."""
    dense_inputs = {name for node in model.graph.node if node.op_type in ("Gemm", "MatMul") for name in node.input}
    return sum(
        int(np.prod(tensor.dims)) * 4
        for tensor in model.graph.initializer
        if tensor.name in dense_inputs and tensor.data_type == TensorProto.FLOAT
    )


def write_aligned(model: onnx.ModelProto, onnx_path: Path, data_path: Path, location: str) -> None:
    """`model` saved as a graph file and a data file that holds every initializer of EXTERNAL_BYTES or more, each at
    a multiple of ALIGNMENT (so that ONNX Runtime memory-maps it); `location` is the data file's name as the graph
    records it, relative to the graph file."""
    with data_path.open("wb") as handle:
        for tensor in model.graph.initializer:
            array = numpy_helper.to_array(tensor)
            if array.nbytes < EXTERNAL_BYTES:
                continue
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            offset = -(-handle.tell() // ALIGNMENT) * ALIGNMENT
            handle.write(b"\0" * (offset - handle.tell()))
            handle.write(data)
            kept = TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
            kept.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", offset), ("length", len(data))):
                kept.external_data.add(key=key, value=str(value))
            tensor.CopyFrom(kept)
    onnx_path.write_bytes(model.SerializeToString())


def export_int8(
    model_dir: str | Path,
    catalog_dir: str | Path,
    calibration_posters: int = CALIBRATION_POSTERS,
    index_dir: str | Path | None = None,
    thresholds: Thresholds | None = None,
    settings: QuantizationSettings | None = None,
    progress: bool = True,
) -> Int8Check:
    """Quantize the float32 export of `model_dir` (which must be whole and fresh), calibrated on posters of
    `catalog_dir`, and check it there; write model.int8.onnx, model.int8.onnx.data and, last, model.int8.onnx.json
    with the check, passed or failed. `index_dir`, when it is a float32 index of this model and catalog, spares the
    float32 pass over the catalog. Inputs that cannot make or check an int8 export raise Int8ExportError before any
    file is touched; the files replace the previous ones only once all three are written (see STAGING_PREFIX)."""
    model_dir = Path(model_dir)
    settings = settings or QuantizationSettings()
    thresholds = thresholds or Thresholds()
    export = read_export(model_dir)  # the float32 export, whole and made from the current weights
    check_op_types(settings.op_types, model_dir, settings.nodes_to_exclude)
    catalog = read_catalog(catalog_dir)
    float32_model = OnnxGenreModel.load(model_dir, threads=available_cores(), precision="float32")
    checked_held_out(catalog, model_dir, float32_model.description.genres)
    ids, calibrated_on = calibration_ids(catalog, model_dir, calibration_posters)
    if not ids:
        raise Int8ExportError(f"the int8 export cannot be calibrated on {catalog.directory}: it has no poster")
    paths = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids]
    with staging_directory(model_dir, STAGING_PREFIX) as stage:  # one per export; a killed one's removed first
        dense_bytes = quantize(
            model_dir, paths, float32_model.input_size, settings, stage / INT8_FILE, stage / INT8_DATA_FILE
        )
        check = check_int8(stage, model_dir, catalog, float32_model, dense_bytes, index_dir, thresholds, progress)
        write_description(stage, export, settings, len(ids), calibrated_on, dense_bytes, check)
        replace_export(stage, model_dir, INT8_FILES)  # INT8_FILES: the record last
    return check


def check_int8(
    stage: Path,
    model_dir: Path,
    catalog: Catalog,
    float32_model: OnnxGenreModel,
    dense_bytes: int,
    index_dir: str | Path | None,
    thresholds: Thresholds,
    progress: bool,
) -> Int8Check:
    """The check of the int8 export written into `stage` against `float32_model` on `catalog`."""
    import onnxruntime as ort

    from model.onnx_model import check_signature, session_options

    options = session_options(available_cores(), prepack=dense_bytes <= PREPACK_LIMIT)
    session = ort.InferenceSession(str(stage / INT8_FILE), options, providers=["CPUExecutionProvider"])
    description, detector = float32_model.description, float32_model.detector
    check_signature(session, stage / INT8_FILE, description, len(detector.mean_), model_dir)
    int8_model = OnnxGenreModel(session, description, detector, precision="int8")
    known = float32_catalog(Path(index_dir) if index_dir else None, catalog, model_dir)
    if known is None:
        float32, int8 = predict_catalog(catalog, [float32_model, int8_model], progress, "float32 and int8 posters")
    else:
        (int8,) = predict_catalog(catalog, [int8_model], progress, "int8 posters")
        float32 = known
    return compare(catalog, model_dir, float32, int8, description, thresholds)


def write_description(
    directory: Path,
    export: dict,
    settings: QuantizationSettings,
    calibration_count: int,
    calibrated_on: str,
    dense_bytes: int,
    check: Int8Check,
) -> None:
    """model.int8.onnx.json in `directory`, beside the int8 files it describes: the float32 export it was made from,
    its files' sizes and hashes, how it was quantized and calibrated, and the check."""
    import onnxruntime as ort

    files = {
        name: {"size": (directory / name).stat().st_size, "sha256": file_sha256(directory / name)}
        for name in (INT8_FILE, INT8_DATA_FILE)
    }
    description = {
        "source": {name: export["files"][name] for name in EXPORT_FILES[:2]},
        "files": files,
        "onnxruntime": ort.__version__,
        "quantization": {**asdict(settings), "tool": "onnxruntime.quantization.quantize_static"},
        "calibration": {"posters": calibration_count, "drawn_from": calibrated_on, "seed": CALIBRATION_SEED},
        "dense_float32_bytes": dense_bytes,
        "check": check.to_json(),
    }
    (directory / INT8_EXPORT_FILE).write_text(json.dumps(description, indent=2) + "\n")
