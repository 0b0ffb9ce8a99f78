"""The genre model served by ONNX Runtime, without TensorFlow or Keras: the network that `python -m model
export-onnx` wrote beside the Keras weights (model.onnx, its weights in model.onnx.data, and model.onnx.json saying
what it was exported from), with the same interface as model.artifacts.GenreModel.

ONNX Runtime memory-maps model.onnx.data (every tensor starts on a page boundary) and the session is told not to
pre-pack (copy) the weights, so the gunicorn workers serving one model share a single copy of its weights in the
page cache. An export older than the weights it came from (the model was trained again) is refused, as is one whose
files changed since it was written; a directory that holds the export without model.weights.h5 is served as is."""

from __future__ import annotations

import ctypes
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.artifacts import (
    OUTPUTS,
    WEIGHTS_FILE,
    DescribedModel,
    Description,
    ModelArtifactError,
    Prediction,
    read_description,
    read_detector,
)
from model.images import preprocess
from model.poster_detector import PosterDetector

ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"
EXPORT_FILE = "model.onnx.json"
EXPORT_FILES = (ONNX_FILE, ONNX_DATA_FILE, EXPORT_FILE)
INPUT_NAME = "poster"  # float32 (n, s, s, 3), VGG-preprocessed, as the Keras network takes it
INTRA_OP_THREADS = 1
"""Threads per inference unless told otherwise. gunicorn runs several workers of several threads, each request on its
own thread, so one thread per inference keeps every core busy without the threads of concurrent inferences fighting
over them; app/gunicorn_conf.py gives a request more (POSTERBENCH_INFERENCE_THREADS) where its share of the cores is
larger."""


class OnnxExportError(ModelArtifactError):
    """An ONNX export that is incomplete, damaged or stale; the message names the file and the command to run."""


class StaleExportError(OnnxExportError):
    """An ONNX export made from other weights than the model directory's model.weights.h5."""


def has_export(directory: str | Path) -> bool:
    """Whether `directory` holds any part of an ONNX export (whole, fresh or not: OnnxGenreModel.load checks)."""
    return any((Path(directory) / name).exists() for name in EXPORT_FILES)


def export_command(directory: Path) -> str:
    """What to do about a missing, damaged or stale export."""
    return f"export it again with `python -m model export-onnx --model {directory}` (make onnx)"


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def weights_stamp(path: Path) -> dict[str, object]:
    """What identifies the Keras weights an export is made from: size, modification time and content hash."""
    stat = path.stat()
    return {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(path)}


def is_same_weights(path: Path, stamp: dict) -> bool:
    """Whether `path` still holds the weights of `stamp`: same size and time (cheap), else the same content hash
    (a copy that did not keep the time)."""
    stat = path.stat()
    if stat.st_size != stamp["size"]:
        return False
    return stat.st_mtime_ns == stamp["mtime_ns"] or file_sha256(path) == stamp["sha256"]


def read_export(directory: Path) -> dict:
    """model.onnx.json, with every export file present and the model's weights unchanged since the export."""
    for name in EXPORT_FILES:
        if not (directory / name).is_file():
            raise OnnxExportError(f"{directory / name} is missing: {export_command(directory)}")
    path = directory / EXPORT_FILE
    try:
        export = json.loads(path.read_text())
        stamp = export["source"]
        source = {"size": int(stamp["size"]), "mtime_ns": int(stamp["mtime_ns"]), "sha256": str(stamp["sha256"])}
        files = export["files"]
        checks = {name: (int(files[name]["size"]), str(files[name]["sha256"])) for name in (ONNX_FILE, ONNX_DATA_FILE)}
    except (ValueError, KeyError, TypeError) as error:
        raise OnnxExportError(f"{path} is damaged ({error!r}): {export_command(directory)}") from error
    weights = directory / WEIGHTS_FILE
    if weights.is_file() and not is_same_weights(weights, source):
        raise StaleExportError(
            f"{directory / ONNX_FILE} was exported from other weights than {weights} (the model was trained "
            f"again since): {export_command(directory)}"
        )
    for name, (size, digest) in checks.items():
        check_file(directory / name, size, digest, directory)
    return export


def check_file(path: Path, size: int, digest: str, directory: Path) -> None:
    """Refuse an export file whose size or content hash is not what the export wrote (damaged, or replaced)."""
    actual = path.stat().st_size
    if actual != size:
        raise OnnxExportError(f"{path} is damaged ({actual:,} bytes, not {size:,}): {export_command(directory)}")
    if file_sha256(path) != digest:
        raise OnnxExportError(f"{path} is damaged (its content hash changed): {export_command(directory)}")


def session_options(threads: int = INTRA_OP_THREADS) -> ort.SessionOptions:
    """One inference on `threads` threads that sleep rather than spin when idle, the big weights used in place.

    Every graph optimisation stays on: the blocked (NCHWc) layout that the last level gives the convolutions makes
    them a quarter faster (49 ms instead of 62 ms for the default preset's poster on one core), at the cost of a
    private copy of the convolution weights (59 MB) per worker. The dense weights, 820 MB of the paper preset's
    880 MB, are never copied."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    # Pre-packing copies every MatMul/Gemm weight into a private buffer per process: 880 MB for the paper preset.
    options.add_session_config_entry("session.disable_prepacking", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@dataclass
class OnnxGenreModel(DescribedModel):
    """A trained network as an ONNX Runtime session, with its description (read from model.json, so re-tuned
    thresholds need no new export) and its poster detector."""

    session: ort.InferenceSession
    description: Description
    detector: PosterDetector

    def predict(self, posters: np.ndarray, batch_size: int = 64) -> Prediction:
        """uint8 RGB (n, s, s, 3) -> what each poster evokes."""
        inputs = preprocess(posters)
        if len(inputs) == 0:
            shapes = output_shapes(self.description, len(self.detector.mean_))
            empty = {name: np.zeros((0, *shape), np.float32) for name, shape in shapes.items()}
            return Prediction.from_outputs(empty, self.detector)
        parts = []
        for start in range(0, len(inputs), batch_size):
            values = self.session.run(list(OUTPUTS), {INPUT_NAME: inputs[start : start + batch_size]})
            parts.append(Prediction.from_outputs(dict(zip(OUTPUTS, values, strict=True)), self.detector))
        return Prediction.concatenate(parts)

    @property
    def threads(self) -> int:
        """ONNX Runtime's intra-op threads per inference, as the session was built with."""
        return self.session.get_session_options().intra_op_num_threads

    @classmethod
    def load(cls, directory: str | Path, threads: int = INTRA_OP_THREADS) -> OnnxGenreModel:
        """The export in `directory`; ModelArtifactError (StaleExportError) names what is missing, damaged or
        stale and the command that writes it again."""
        directory = Path(directory)
        description = read_description(directory)
        detector = read_detector(directory)
        read_export(directory)
        path = directory / ONNX_FILE
        try:
            session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own kinds (Fail, InvalidProtobuf, ...)
            raise OnnxExportError(
                f"{path} cannot be loaded by onnxruntime {ort.__version__} ({error}): {export_command(directory)}"
            ) from error
        check_signature(session, path, description, len(detector.mean_), directory)
        release_freed_memory()
        return cls(session=session, description=description, detector=detector)


def release_freed_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's malloc_trim; nothing where there is none).
    Building the session copies the convolution weights while reordering them into the CPU's blocked layout, and
    glibc keeps the freed temporary copies: about 50 MB per worker."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):
        return
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def output_shapes(description: Description, signature_size: int) -> dict[str, list[int]]:
    """Each output's shape after the batch dimension."""
    return {
        "genres": [len(description.genres)],
        "features": [description.preset.feature_size],
        "decades": [len(description.decades)],
        "year": [1],
        "rating": [1],
        "signature": [signature_size],
    }


def check_signature(
    session: ort.InferenceSession, path: Path, description: Description, signature_size: int, directory: Path
) -> None:
    """Refuse an export whose input or outputs do not fit model.json (a model.onnx of another model)."""
    inputs = {item.name: item.shape[1:] for item in session.get_inputs()}
    outputs = {item.name: item.shape[1:] for item in session.get_outputs()}
    size = description.preset.input_size
    expected_outputs = output_shapes(description, signature_size)
    if inputs != {INPUT_NAME: [size, size, 3]} or outputs != expected_outputs:
        raise OnnxExportError(
            f"{path} does not fit {directory / 'model.json'}: it takes {inputs} and gives {outputs}, not "
            f"{ {INPUT_NAME: [size, size, 3]} } and {expected_outputs}: {export_command(directory)}"
        )
