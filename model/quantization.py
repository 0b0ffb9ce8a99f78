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

The check, on the held-out split (the test split of split.json; every movie with a target genre when the catalog
is not the model's own), against the float32 export on the same posters:
- the genres' macro ROC-AUC at most AUC_DROP below float32's;
- each genre's decision (probability >= its tuned threshold) the same on at least AGREEMENT of the posters;
- the five recommendations of each held-out poster (its own movie left out, the app's genre and decade filters,
  for each distance) sharing at least OVERLAP of float32's five on average: int8 queries searched among the
  catalog's int8 feature vectors, as the app serves int8 with an index built by int8 (`make index`), against float32
  queries among float32 vectors. The figures of int8 queries among float32 vectors (an index built before int8)
  are recorded beside them, not checked.

Files, beside the float32 export: model.int8.onnx (the graph, with the small tensors), model.int8.onnx.data (every
tensor of EXTERNAL_BYTES or more at a 64 KiB-aligned offset, memory-mapped as the float32 export's is) and
model.int8.onnx.json, written last: the float32 export it was made from, the size and hash of both files, the
quantization and calibration settings, and the check with its figures, passed or not. model/onnx_model.py serves
the int8 export only when that check passed (choose_precision)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from catalog import Catalog, read_catalog
from model.artifacts import Description, Prediction, file_sha256
from model.images import load_posters, preprocess
from model.index import DESCRIPTION_FILE as INDEX_DESCRIPTION_FILE
from model.index import FeatureIndex, FeatureIndexError, available_cores, model_fingerprint, predict_catalog
from model.onnx_export import ALIGNMENT, write_whole
from model.onnx_model import (
    EXPORT_FILES,
    INPUT_NAME,
    INT8_DATA_FILE,
    INT8_EXPORT_FILE,
    INT8_FILE,
    ONNX_FILE,
    PREPACK_LIMIT,
    OnnxGenreModel,
    read_export,
)
from model.split import SPLIT_FILE, Split

CALIBRATION_POSTERS = 256
CALIBRATION_BATCH = 32
CALIBRATION_SEED = 0
AUC_DROP = 0.005
AGREEMENT = 0.98
OVERLAP = 4.0
RECOMMENDATIONS = 5
EXTERNAL_BYTES = 4096
"""Tensors of at least this many bytes go into model.int8.onnx.data; smaller ones (scales, zero points, small
biases) stay in the graph file, where 64 KiB of alignment each would cost more than they weigh."""


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


@dataclass(frozen=True)
class Thresholds:
    """What the int8 export must reach to be served."""

    auc_drop: float = AUC_DROP  # macro ROC-AUC at most this much below float32's
    agreement: float = AGREEMENT  # every genre's decisions the same on at least this share of the posters
    overlap: float = OVERLAP  # recommendations shared with float32's five, on average, for every distance


@dataclass(frozen=True)
class Int8Check:
    """How the int8 export compared with the float32 one on the held-out posters."""

    held_out: str  # which posters, e.g. "996 posters: the model's held-out test split"
    searched: str  # among which movies the recommendations were searched
    auc_float32: float
    auc_int8: float
    agreement: dict[str, float]  # genre -> share of the posters whose decision is the same
    overlap: dict[str, float]  # distance -> mean shared recommendations, int8 index against float32 index
    overlap_float32_index: dict[str, float]  # distance -> the same with int8 queries among float32 vectors
    decision_thresholds: list[float]
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def auc_change(self) -> float:
        return self.auc_int8 - self.auc_float32

    @property
    def reasons(self) -> list[str]:
        """Why the check failed; empty when it passed."""
        found = []
        if not self.auc_change >= -self.thresholds.auc_drop:
            found.append(
                f"macro ROC-AUC {self.auc_int8:.4f} is {-self.auc_change:.4f} below float32's {self.auc_float32:.4f} "
                f"(at most {self.thresholds.auc_drop:g} allowed)"
            )
        for genre, share in self.agreement.items():
            if not share >= self.thresholds.agreement:
                found.append(
                    f"{genre} decisions agree with float32's on {share:.1%} of the posters "
                    f"({self.thresholds.agreement:.0%} needed)"
                )
        for distance, shared in self.overlap.items():
            if not shared >= self.thresholds.overlap:
                found.append(
                    f"{distance} recommendations share {shared:.2f} of float32's {RECOMMENDATIONS} on average "
                    f"({self.thresholds.overlap:g} needed)"
                )
        return found

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def summary(self) -> str:
        """E.g. "AUC -0.0010, agreement 98.5 %, overlap 4.80/5": the worst genre's agreement, the worst distance's
        overlap."""
        return (
            f"AUC {self.auc_change:+.4f}, agreement {min(self.agreement.values()):.1%}".replace("%", " %")
            + f", overlap {min(self.overlap.values()):.2f}/{RECOMMENDATIONS}"
        )

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "summary": self.summary,
            "held_out": self.held_out,
            "searched": self.searched,
            "macro_roc_auc": {"float32": self.auc_float32, "int8": self.auc_int8, "change": self.auc_change},
            "agreement": self.agreement,
            "overlap": self.overlap,
            "overlap_float32_index": self.overlap_float32_index,
            "decision_thresholds": self.decision_thresholds,
            "thresholds": asdict(self.thresholds),
        }


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


def held_out_ids(catalog: Catalog, model_dir: Path) -> tuple[list[str], str]:
    """The posters the check compares on: the model's held-out test split, or every movie with a target genre of
    another catalog (model.evaluation's choice)."""
    from model.evaluation import evaluation_movies

    return evaluation_movies(catalog, model_dir)


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


def float32_catalog(index_dir: Path | None, catalog: Catalog, model_dir: Path) -> Prediction | None:
    """The float32 predictions of every catalog poster from `index_dir` when it is an index of this catalog built by
    float32 from the model's weights (as `make index` built them before int8, or Keras did); else None."""
    if index_dir is None or not (index_dir / INDEX_DESCRIPTION_FILE).is_file():
        return None
    try:
        described = json.loads((index_dir / INDEX_DESCRIPTION_FILE).read_text())
        index = FeatureIndex.load(index_dir, catalog)
        same_model = described["model_fingerprint"] == model_fingerprint(model_dir)
    except (FeatureIndexError, ValueError, KeyError, TypeError, OSError):
        return None
    if not same_model or index.precision != "float32":
        return None
    return index.prediction(list(range(len(index.imdb_ids))))


def recommendations(
    prediction: Prediction,
    rows: list[int],
    labels: np.ndarray,
    catalog_decades: np.ndarray,
    decades: tuple[int, ...],
    search_features: np.ndarray,
    distance: str,
) -> list[set[int]]:
    """The app's five recommendations (recommend.recommend, with its genre and decade filters) for each catalog row
    in `rows`, its own row left out, its query read from `prediction`, searched among `search_features`."""
    from recommend import NeighbourSearch, decade_mask, recommend

    search = NeighbourSearch(search_features, threads=1)
    return [
        set(
            recommend(
                search,
                labels,
                prediction.features[row],
                prediction.genres[row],
                distance,
                k=RECOMMENDATIONS,
                exclude_rows=[row],
                era=decade_mask(prediction.decades[row], decades, catalog_decades),
            )
        )
        for row in rows
    ]


def mean_overlap(first: list[set[int]], second: list[set[int]]) -> float:
    return float(np.mean([len(a & b) for a, b in zip(first, second, strict=True)]))


def compare(
    catalog: Catalog,
    model_dir: Path,
    float32: Prediction,
    int8: Prediction,
    description: Description,
    thresholds: Thresholds,
) -> Int8Check:
    """The check's figures from the float32 and int8 predictions of every catalog poster (row i: catalog movie i)."""
    from model.metrics import genre_report
    from recommend import DISTANCES

    ids, which = held_out_ids(catalog, model_dir)
    rows = [catalog.position(imdb_id) for imdb_id in ids]
    genres, cutoffs = description.genres, description.thresholds
    truth = catalog.labels(genres, ids).astype(int)

    def auc(prediction: Prediction) -> float:
        return genre_report(truth, prediction.genres[rows], cutoffs, genres)["macro_roc_auc"]

    same = (float32.genres[rows] >= cutoffs) == (int8.genres[rows] >= cutoffs)
    labels = catalog.labels(genres)
    catalog_decades = catalog.decades()
    overlap, mixed = {}, {}
    for distance in DISTANCES:

        def shown(query: Prediction, among: Prediction, distance: str = distance) -> list[set[int]]:
            return recommendations(query, rows, labels, catalog_decades, description.decades, among.features, distance)

        reference = shown(float32, float32)
        overlap[distance] = mean_overlap(reference, shown(int8, int8))
        mixed[distance] = mean_overlap(reference, shown(int8, float32))
    return Int8Check(
        held_out=f"{len(rows)} posters: {which}",
        searched=f"the {len(catalog):,} movies of {catalog.directory}, each poster's own left out",
        auc_float32=auc(float32),
        auc_int8=auc(int8),
        agreement={genre: float(share) for genre, share in zip(genres, same.mean(axis=0), strict=True)},
        overlap=overlap,
        overlap_float32_index=mixed,
        decision_thresholds=[float(value) for value in cutoffs],
        thresholds=thresholds,
    )


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
    float32 pass over the catalog."""
    import onnxruntime as ort

    from model.onnx_model import check_signature, session_options

    model_dir = Path(model_dir)
    settings = settings or QuantizationSettings()
    thresholds = thresholds or Thresholds()
    export = read_export(model_dir)  # the float32 export, whole and made from the current weights
    catalog = read_catalog(catalog_dir)
    cores = available_cores()
    float32_model = OnnxGenreModel.load(model_dir, threads=cores, precision="float32")
    (model_dir / INT8_EXPORT_FILE).unlink(missing_ok=True)  # no int8 export until this one is whole and checked
    ids, calibrated_on = calibration_ids(catalog, model_dir, calibration_posters)
    paths = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids]
    dense_bytes = write_whole(
        model_dir,
        (INT8_FILE, INT8_DATA_FILE),
        lambda graph, data: quantize(model_dir, paths, float32_model.input_size, settings, graph, data),
    )
    options = session_options(cores, prepack=dense_bytes <= PREPACK_LIMIT)
    session = ort.InferenceSession(str(model_dir / INT8_FILE), options, providers=["CPUExecutionProvider"])
    description, detector = float32_model.description, float32_model.detector
    check_signature(session, model_dir / INT8_FILE, description, len(detector.mean_), model_dir)
    int8_model = OnnxGenreModel(session, description, detector, precision="int8")
    known = float32_catalog(Path(index_dir) if index_dir else None, catalog, model_dir)
    if known is None:
        float32, int8 = predict_catalog(catalog, [float32_model, int8_model], progress, "float32 and int8 posters")
    else:
        (int8,) = predict_catalog(catalog, [int8_model], progress, "int8 posters")
        float32 = known
    check = compare(catalog, model_dir, float32, int8, description, thresholds)
    write_description(model_dir, export, settings, len(ids), calibrated_on, dense_bytes, check)
    return check


def write_description(
    model_dir: Path,
    export: dict,
    settings: QuantizationSettings,
    calibration_count: int,
    calibrated_on: str,
    dense_bytes: int,
    check: Int8Check,
) -> None:
    """model.int8.onnx.json: the float32 export it was made from, its files' sizes and hashes, how it was quantized
    and calibrated, and the check."""
    import onnxruntime as ort

    files = {
        name: {"size": (model_dir / name).stat().st_size, "sha256": file_sha256(model_dir / name)}
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
    staged = model_dir / f".{INT8_EXPORT_FILE}.partial"
    staged.write_text(json.dumps(description, indent=2) + "\n")
    os.replace(staged, model_dir / INT8_EXPORT_FILE)
