"""The genre model served by ONNX Runtime, without TensorFlow or Keras: the network that `python -m model
export-onnx` wrote beside the Keras weights (model.onnx, its weights in model.onnx.data, and model.onnx.json saying
what it was exported from), with the same interface as model.artifacts.GenreModel.

ONNX Runtime memory-maps model.onnx.data (every tensor starts on a page boundary) and the session is told not to
pre-pack (copy) the weights, so the gunicorn workers serving one model share a single copy of its weights in the
page cache. An export older than the weights it came from (the model was trained again) is refused, as is one whose
files changed since it was written; a directory that holds the export without model.weights.h5 is served as is.

Beside the float32 export, `make onnx` writes an int8 one (model.int8.onnx, model.int8.onnx.data and
model.int8.onnx.json, by model/quantization.py) with the check it passed or failed on the held-out split. `load`
serves the int8 export when that check passed and its files are whole and made from the float32 export beside it,
else the float32 export, and logs which and why; the precision setting (POSTERBENCH_PRECISION: auto, float32 or
int8) overrides the choice."""

from __future__ import annotations

import ctypes
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.artifacts import (
    EXPORT_FILE,
    OUTPUTS,
    WEIGHTS_FILE,
    DescribedModel,
    Description,
    ModelArtifactError,
    Prediction,
    file_sha256,
    is_same_weights,
    read_description,
    read_detector,
)
from model.images import preprocess
from model.poster_detector import PosterDetector

ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"
EXPORT_FILES = (ONNX_FILE, ONNX_DATA_FILE, EXPORT_FILE)
INT8_FILE = "model.int8.onnx"
INT8_DATA_FILE = "model.int8.onnx.data"
INT8_EXPORT_FILE = "model.int8.onnx.json"
INT8_FILES = (INT8_FILE, INT8_DATA_FILE, INT8_EXPORT_FILE)
PREPACK_LIMIT = 64 * 1024 * 1024
"""The most bytes of float32 dense weights (Gemm, MatMul: the layers left unquantized) that an int8 session may
pre-pack, that is copy into each worker's own memory: 0.7 MB for the default and demo presets. The paper preset's
820 MB are more: "auto" serves its float32 export (whose dense weights stay shared, memory-mapped), and "int8" its
int8 export unpacked (the dense weights shared, the convolutions slower than float32's)."""
PRECISIONS = ("auto", "float32", "int8")
PRECISION_VARIABLE = "POSTERBENCH_PRECISION"
"""Which export `load` serves when not told: auto (int8 when its check passed, else float32), float32 or int8 (even
when its check failed)."""
INPUT_NAME = "poster"  # float32 (n, height, width, 3), VGG-preprocessed, as the Keras network takes it
INTRA_OP_THREADS = 1
"""Threads per inference unless told otherwise. gunicorn runs several workers of several threads, each request on its
own thread, so one thread per inference keeps every core busy without the threads of concurrent inferences fighting
over them; app/gunicorn_conf.py gives a request more (POSTERBENCH_INFERENCE_THREADS) where its share of the cores is
larger."""


class OnnxExportError(ModelArtifactError):
    """An ONNX export that is incomplete, damaged or stale; the message names the file and the command to run."""


class StaleExportError(OnnxExportError):
    """An ONNX export made from other weights than the model directory's model.weights.h5."""


class PrecisionSettingError(ValueError):
    """A precision setting that is none of PRECISIONS."""


logger = logging.getLogger(__name__)


def has_export(directory: str | Path) -> bool:
    """Whether `directory` holds any part of an ONNX export (whole, fresh or not: OnnxGenreModel.load checks)."""
    return any((Path(directory) / name).exists() for name in EXPORT_FILES)


def export_command(directory: Path) -> str:
    """What to do about a missing, damaged or stale export."""
    return f"export it again with `posterbench export-onnx --model {directory}` (make onnx)"


def require_files(directory: Path, names: tuple[str, ...], remedy: str) -> None:
    """OnnxExportError naming the first of `names` missing from `directory`, and `remedy`."""
    for name in names:
        if not (directory / name).is_file():
            raise OnnxExportError(f"{directory / name} is missing: {remedy}")


def recorded_files(files: dict, names: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """{name: (size, sha256)} of `names` as an export's JSON records them under "files" (or "source")."""
    return {name: (int(files[name]["size"]), str(files[name]["sha256"])) for name in names}


def read_export(directory: Path) -> dict:
    """model.onnx.json, with every export file present and the model's weights unchanged since the export."""
    require_files(directory, EXPORT_FILES, export_command(directory))
    path = directory / EXPORT_FILE
    try:
        export = json.loads(path.read_text())
        stamp = export["source"]
        source = {"size": int(stamp["size"]), "mtime_ns": int(stamp["mtime_ns"]), "sha256": str(stamp["sha256"])}
        checks = recorded_files(export["files"], (ONNX_FILE, ONNX_DATA_FILE))
    except (ValueError, KeyError, TypeError) as error:
        raise OnnxExportError(f"{path} is damaged ({error!r}): {export_command(directory)}") from error
    weights = directory / WEIGHTS_FILE
    if weights.is_file() and not is_same_weights(weights, source):
        raise StaleExportError(
            f"{directory / ONNX_FILE} was exported from other weights than {weights} (the model was trained "
            f"again since): {export_command(directory)}"
        )
    for name, (size, digest) in checks.items():
        check_file(directory / name, size, digest, export_command(directory))
    return export


def check_file(path: Path, size: int, digest: str, remedy: str) -> None:
    """Refuse an export file whose size or content hash is not what the export wrote (damaged, or replaced)."""
    actual = path.stat().st_size
    if actual != size:
        raise OnnxExportError(f"{path} is damaged ({actual:,} bytes, not {size:,}): {remedy}")
    if file_sha256(path) != digest:
        raise OnnxExportError(f"{path} is damaged (its content hash changed): {remedy}")


def session_options(threads: int = INTRA_OP_THREADS, prepack: bool = False) -> ort.SessionOptions:
    """One inference on `threads` threads that sleep rather than spin when idle, the big weights used in place
    unless `prepack`.

    Every graph optimisation stays on: the blocked (NCHWc) layout that the last level gives the convolutions makes
    them a quarter faster (49 ms instead of 62 ms for the default preset's poster on one core), at the cost of a
    private copy of the convolution weights (59 MB) per worker. The dense weights, 820 MB of the paper preset's
    880 MB, are never copied. The int8 export's convolutions (QLinearConv) need their weights pre-packed, or they
    reorder them at every inference (slower than float32): its sessions pre-pack (see PREPACK_LIMIT)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    # Pre-packing copies every MatMul/Gemm weight into a private buffer per process: 880 MB for the paper preset.
    options.add_session_config_entry("session.disable_prepacking", "0" if prepack else "1")
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
    precision: str = "float32"  # the export served: float32 or int8
    precision_reason: str = ""  # why, as logged at load ("check passed (...)", "int8 check failed: ...")

    def predict(self, posters: np.ndarray, batch_size: int = 64) -> Prediction:
        """uint8 RGB (n, height, width, 3) -> what each poster evokes; ValueError for posters of another shape."""
        width, height = self.input_size
        if np.shape(posters)[1:] != (height, width, 3):
            raise ValueError(f"this model takes posters of shape (n, {height}, {width}, 3), not {np.shape(posters)}")
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
    def load(
        cls, directory: str | Path, threads: int = INTRA_OP_THREADS, precision: str | None = None
    ) -> OnnxGenreModel:
        """The export in `directory`: its int8 form when `precision` is "auto" and the int8 check passed (see
        choose_precision), or "int8"; else the float32 one. `precision` None reads POSTERBENCH_PRECISION (default
        auto). ModelArtifactError (StaleExportError) names what is missing, damaged or stale and the command that
        writes it again; PrecisionSettingError a precision that is none of PRECISIONS.

        The files are checked, then opened by onnxruntime by name: an int8 export renamed in meanwhile (`make onnx`
        while a gunicorn worker starts) gave a session of a new graph and old weights, or of files other than those
        checked. The export's files are held open while they are loaded, and loaded again (LOAD_ATTEMPTS) when the
        directory names others by then. A float32 export being written has no record until it is whole (export_onnx):
        a worker starting then is refused, as before."""
        directory = Path(directory)
        setting = precision_setting(precision)
        description = read_description(directory)
        detector = read_detector(directory)
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            with HeldFiles(directory, (*EXPORT_FILES, *INT8_FILES)) as held:
                try:
                    session, choice = load_session(directory, threads, setting, description, detector)
                except OnnxExportError:
                    if attempt == LOAD_ATTEMPTS or not held.replaced():
                        raise
                    continue
                if held.replaced():
                    continue
            release_freed_memory()
            (logger.warning if choice.warn else logger.info)("serving %s: %s", choice.precision, choice.reason)
            return cls(session, description, detector, precision=choice.precision, precision_reason=choice.reason)
        raise OnnxExportError(
            f"the export in {directory} was replaced {LOAD_ATTEMPTS} times while it was loaded: try again once "
            "`make onnx` is done"
        )


LOAD_ATTEMPTS = 3
"""How many times OnnxGenreModel.load loads an export that is replaced while it loads it, before it gives up."""


class HeldFiles:
    """The files of `names` that `directory` holds, opened (so that each keeps its device and inode while held);
    `replaced()` says whether the directory names other files now (renamed in, removed or added)."""

    def __init__(self, directory: Path, names: tuple[str, ...]) -> None:
        self.paths = [directory / name for name in names]
        self.handles: list[int] = []
        self.held: dict[Path, tuple[int, int] | None] = {}

    def __enter__(self) -> HeldFiles:
        try:
            for path in self.paths:
                try:
                    handle = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    self.held[path] = None
                    continue
                self.handles.append(handle)
                self.held[path] = file_identity(os.fstat(handle))
        except BaseException:  # an unreadable file: those opened before it are closed, not leaked
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self.handles:
            os.close(handle)
        self.handles.clear()

    def replaced(self) -> bool:
        """Whether any name now gives another file than the one held, or a file where there was none, or none."""
        return any(named_file(path) != identity for path, identity in self.held.items())


def file_identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def named_file(path: Path) -> tuple[int, int] | None:
    """The device and inode of the file `path` names now, or None."""
    try:
        return file_identity(os.stat(path))
    except FileNotFoundError:
        return None


def load_session(
    directory: Path, threads: int, setting: str, description: Description, detector: PosterDetector
) -> tuple[ort.InferenceSession, PrecisionChoice]:
    """The session of the export to serve (choose_precision), checked against model.json, and that choice."""
    export = read_export(directory)
    choice = choose_precision(directory, export, description, setting)
    path = directory / (INT8_FILE if choice.precision == "int8" else ONNX_FILE)
    try:
        options = session_options(threads, prepack=choice.prepack)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own kinds (Fail, InvalidProtobuf, ...)
        raise OnnxExportError(
            f"{path} cannot be loaded by onnxruntime {ort.__version__} ({error}): {export_command(directory)}"
        ) from error
    check_signature(session, path, description, len(detector.mean_), directory)
    return session, choice


def precision_setting(precision: str | None) -> str:
    """`precision`, else POSTERBENCH_PRECISION, else "auto"; PrecisionSettingError when it is none of PRECISIONS."""
    setting = (os.environ.get(PRECISION_VARIABLE) or "auto") if precision is None else precision
    setting = setting.strip().lower()
    if setting not in PRECISIONS:
        raise PrecisionSettingError(
            f"the precision setting ({PRECISION_VARIABLE}) must be one of {', '.join(PRECISIONS)}, not {setting!r}"
        )
    return setting


@dataclass(frozen=True)
class PrecisionChoice:
    """The export to serve, why, and whether that is worth a warning (an int8 export that failed its check, or is
    unusable, or is served although it failed)."""

    precision: str  # float32 or int8
    reason: str
    warn: bool = False
    prepack: bool = False  # whether the session pre-packs its weights (int8, unless its dense layers are big)


def choose_precision(directory: Path, export: dict, description: Description, setting: str) -> PrecisionChoice:
    """Which export to serve ("float32" or "int8") and why. "auto" serves int8 when its export is whole, made from
    the float32 export beside it, and its recorded check passed with the decision thresholds of model.json; any
    other int8 export (missing, damaged, stale, failed) gives float32, as does one whose dense layers are too big to
    pre-pack (PREPACK_LIMIT). "int8" serves a whole int8 export even when its check failed, and raises
    OnnxExportError without one."""
    if setting == "float32":
        return PrecisionChoice("float32", f"the precision setting asks for float32 ({PRECISION_VARIABLE})")
    if setting == "auto" and not (directory / INT8_EXPORT_FILE).exists():
        return PrecisionChoice("float32", "no int8 export beside it (make onnx writes one)")
    try:
        int8 = read_int8_export(directory, export)
    except OnnxExportError as error:
        if setting == "int8":
            raise
        return PrecisionChoice("float32", f"the int8 export is unusable: {error}", warn=True)
    check, prepack = int8["check"], int8.get("dense_float32_bytes", PREPACK_LIMIT + 1) <= PREPACK_LIMIT
    summary = str(check.get("summary", ""))
    if setting == "int8":
        if check.get("passed") is True:
            reason = f"the precision setting asks for int8; its check passed ({summary})"
            return PrecisionChoice("int8", reason, prepack=prepack)
        reason = f"the precision setting asks for int8, although its check failed: {failure(check)}"
        return PrecisionChoice("int8", reason, warn=True, prepack=prepack)
    if check.get("passed") is not True:
        return PrecisionChoice("float32", f"int8 check failed: {failure(check)}", warn=True)
    checked = np.asarray(check.get("decision_thresholds", []), dtype=np.float64)
    if checked.shape != description.thresholds.shape or not np.allclose(checked, description.thresholds, atol=1e-6):
        reason = (
            "int8 check is out of date: it was made with other decision thresholds than model.json holds (tuned "
            "again since): check it again with `make onnx`"
        )
        return PrecisionChoice("float32", reason, warn=True)
    if not prepack:
        reason = (
            f"int8 check passed ({summary}), but its {int8['dense_float32_bytes'] / 2**20:,.0f} MiB of float32 dense "
            f"weights are more than a worker may copy to pre-pack ({PREPACK_LIMIT // 2**20} MiB), and unpacked its "
            "convolutions are slower than float32's"
        )
        return PrecisionChoice("float32", reason)
    return PrecisionChoice("int8", f"check passed ({summary})", prepack=prepack)


def failure(check: dict) -> str:
    reasons = check.get("reasons") or ["the check recorded no reason"]
    return "; ".join(str(reason) for reason in reasons)


def int8_command(directory: Path) -> str:
    command = f"posterbench export-onnx --int8-only --model {directory} --catalog CATALOG"
    return f"write it again with `{command}` (make onnx)"


def read_int8_export(directory: Path, export: dict) -> dict:
    """model.int8.onnx.json (its "check" a dict), with every int8 file present and whole, made from the float32
    export `export` describes (read_export's); OnnxExportError says what is wrong."""
    require_files(directory, INT8_FILES, int8_command(directory))
    path = directory / INT8_EXPORT_FILE
    try:
        int8 = json.loads(path.read_text())
        source = recorded_files(int8["source"], EXPORT_FILES[:2])
        files = recorded_files(int8["files"], INT8_FILES[:2])
        if not isinstance(int8["check"], dict):
            raise TypeError(f"check is {type(int8['check']).__name__}")
        int8["dense_float32_bytes"] = int(int8.get("dense_float32_bytes", PREPACK_LIMIT + 1))
    except (ValueError, KeyError, TypeError) as error:
        raise OnnxExportError(f"{path} is damaged ({error!r}): {int8_command(directory)}") from error
    exported = recorded_files(export["files"], tuple(source))
    if source != exported:
        raise OnnxExportError(
            f"{directory / INT8_FILE} was quantized from another float32 export than {directory / ONNX_FILE} (exported "
            f"again since): {int8_command(directory)}"
        )
    for name, (size, digest) in files.items():
        check_file(directory / name, size, digest, int8_command(directory))
    return int8


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
    width, height = description.preset.input_size
    expected_inputs = {INPUT_NAME: [height, width, 3]}
    expected_outputs = output_shapes(description, signature_size)
    if inputs != expected_inputs or outputs != expected_outputs:
        raise OnnxExportError(
            f"{path} does not fit {directory / 'model.json'}: it takes {inputs} and gives {outputs}, not "
            f"{expected_inputs} and {expected_outputs}: {export_command(directory)}"
        )
