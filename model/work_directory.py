"""Where a training run keeps what it resumes from, beside the model directory: the frozen part's outputs for each
poster and its augmented copies (the paper's augmentation), cached on disk, and the checkpoints; and the batches the
trainable part is fed from that cache."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from catalog import Catalog
from model.artifacts import is_same_weights, weights_stamp
from model.images import load_posters, preprocess
from model.presets import Preset

ENCODE_BATCH = 64


def augmentation(seed: int) -> keras.Sequential:
    """The paper's augmentation: flips, zoom up to 0.5, shifts up to 30 %, rotation up to 30 degrees."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomZoom((-0.5, 0.5), seed=seed),
            keras.layers.RandomTranslation(0.3, 0.3, seed=seed),
            keras.layers.RandomRotation(30 / 360, seed=seed),
        ]
    )


@dataclass(frozen=True)
class FrozenOutputs:
    """What the frozen part gives for a split's posters and their copies, cached: `maps` (copies, n, h, w, c), what
    the trainable part trains on, `pools` (copies, n, p), what the heads on the frozen pool are fitted on, and
    `signatures` (n, s), the frozen blocks' part of the posters' (copy 0's) signatures, what the poster detector
    is fitted on."""

    maps: np.ndarray
    pools: np.ndarray
    signatures: np.ndarray


@dataclass(frozen=True)
class Resumed:
    """What an interrupted run had done: its completed epochs, and its best epoch's value and number (None: none)."""

    epochs: int
    best: float | None
    best_epoch: int | None

    @property
    def waited(self) -> int:
        """Epochs since the best one, which the early stop had counted."""
        return 0 if self.best_epoch is None else self.epochs - 1 - self.best_epoch


class WorkDirectory:
    """Where an unfinished training run keeps its cached frozen outputs and checkpoints. The cache outlives a change
    of the training settings (learning rate, epochs...); the checkpoints do not."""

    MANIFEST = "manifest.json"  # what the cached frozen outputs were computed for
    TRAINING_MANIFEST = "training.json"  # what the checkpoints were trained with

    def __init__(self, path: Path):
        self.path = path
        self.best_weights = path / "best.weights.h5"
        self.best_record = path / "best.json"  # BestEpochRecord's: the epoch whose weights best_weights holds

    def resumed(self) -> Resumed:
        """Where an interrupted run of these settings stands, as its backup (Keras's BackupAndRestore, which restores
        the weights and the epoch) says. Without a backup (none made yet, or `fit` ended and removed it) nothing is
        resumed: the history and the best weights of a run before are removed. The history is cut to the backup's
        epochs; the best weights are trusted only while best.json describes them (an interruption while they were
        written leaves them unreadable, and they are then dropped)."""
        metadata = self.path / "checkpoint" / "training_metadata.json"
        try:
            completed = int(json.loads(metadata.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            completed = 0
        history = self.path / "history.csv"
        if completed == 0:
            for stale in (history, self.best_weights, self.best_record):
                stale.unlink(missing_ok=True)
            return Resumed(0, None, None)
        if history.exists():
            rows = history.read_text().splitlines()
            history.write_text("\n".join(rows[: completed + 1]) + "\n")
        try:
            record = json.loads(self.best_record.read_text())
            if record["epoch"] < completed and is_same_weights(self.best_weights, record["weights"]):
                return Resumed(completed, float(record["value"]), int(record["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.best_weights.unlink(missing_ok=True)
        self.best_record.unlink(missing_ok=True)
        return Resumed(completed, None, None)

    @classmethod
    def open(cls, out_dir: Path, manifest: dict, training_manifest: dict | None = None) -> WorkDirectory:
        """The work directory of `out_dir`: emptied first if its cache was computed for other inputs (`manifest`),
        its checkpoints removed if they were trained with other settings (`training_manifest`)."""
        path = out_dir.parent / f".{out_dir.name}.work"
        for name, expected in ((cls.MANIFEST, manifest), (cls.TRAINING_MANIFEST, training_manifest or manifest)):
            expected = json.loads(json.dumps(expected))  # compare as stored: tuples become lists
            stored = path / name
            if path.exists() and (not stored.exists() or json.loads(stored.read_text()) != expected):
                cls(path).remove(keep_cache=name != cls.MANIFEST)
            path.mkdir(parents=True, exist_ok=True)
            stored.write_text(json.dumps(expected) + "\n")
        return cls(path)

    def frozen_outputs(
        self,
        part: str,
        frozen: keras.Model,
        catalog: Catalog,
        ids: list[str],
        preset: Preset,
        augmented_copies: int,
        seed: int,
        progress: bool,
    ) -> FrozenOutputs:
        """The frozen part's outputs for every poster of `ids` and each of its copies (copy 0 unaugmented): its maps,
        (1 + augmented_copies, n, h, w, c) float16, the frozen pools, (1 + augmented_copies, n, p) float32, and the
        frozen blocks' part of the posters' signatures, (n, s) float32, of copy 0 only."""
        path = self.path / f"frozen-{part}.npy"
        pools_path, signatures_path = self.path / f"pools-{part}.npy", self.path / f"signatures-{part}.npy"
        if path.exists() and pools_path.exists() and signatures_path.exists():
            return FrozenOutputs(*(np.load(p, mmap_mode="r") for p in (path, pools_path, signatures_path)))
        shapes = {name: tuple(output.shape[1:]) for name, output in frozen.output.items()}
        shape = (1 + augmented_copies, len(ids), *shapes["maps"])
        temporary = path.with_suffix(".partial.npy")
        pools_temporary, signatures_temporary = (p.with_suffix(".partial.npy") for p in (pools_path, signatures_path))
        outputs = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
        pools = np.lib.format.open_memmap(
            pools_temporary, mode="w+", dtype=np.float32, shape=(*shape[:2], *shapes["pool"])
        )
        signatures = np.lib.format.open_memmap(
            signatures_temporary, mode="w+", dtype=np.float32, shape=(len(ids), *shapes["signature"])
        )
        augment = augmentation(seed)
        movies = [catalog.get(imdb_id) for imdb_id in ids]
        with tqdm(total=len(ids) * shape[0], desc=f"frozen layers, {part}", unit="poster", disable=not progress) as bar:
            for start in range(0, len(ids), ENCODE_BATCH):
                chunk = movies[start : start + ENCODE_BATCH]
                posters = load_posters([catalog.poster_path(movie) for movie in chunk], preset.input_size, False)
                for copy in range(shape[0]):
                    batch = posters if copy == 0 else np.asarray(augment(posters.astype(np.float32), training=True))
                    found = frozen(preprocess(batch), training=False)
                    outputs[copy, start : start + len(chunk)] = np.asarray(found["maps"])
                    pools[copy, start : start + len(chunk)] = np.asarray(found["pool"])
                    if copy == 0:
                        signatures[start : start + len(chunk)] = np.asarray(found["signature"])
                    bar.update(len(chunk))
        for array in (outputs, pools, signatures):
            array.flush()
        del outputs, pools, signatures
        pools_temporary.rename(pools_path)
        signatures_temporary.rename(signatures_path)
        temporary.rename(path)  # last: the maps' file says that all three are whole
        return FrozenOutputs(*(np.load(p, mmap_mode="r") for p in (path, pools_path, signatures_path)))

    def history(self) -> dict[str, list[float]]:
        path = self.path / "history.csv"
        if not path.exists():
            return {}
        rows = path.read_text().splitlines()
        columns = rows[0].split(",")
        values = [list(map(float, row.split(","))) for row in rows[1:] if row]
        return {name: [row[i] for row in values] for i, name in enumerate(columns) if name != "epoch"}

    def remove(self, keep_cache: bool = False) -> None:
        """Remove the work directory, or with `keep_cache` only its checkpoints."""
        if not keep_cache:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for leftover in (self.path / "checkpoint", self.path / "history.csv", self.best_weights, self.best_record):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink(missing_ok=True)


def posters_digest(catalog: Catalog, ids: list[str]) -> str:
    """What the listed posters are, for the cache's key: each poster's size and modification time (a re-scraped,
    replaced or another catalog's poster under the same id changes them; hashing every poster's bytes would add
    minutes to a run on the real catalog)."""
    digest = hashlib.sha256()
    for imdb_id in ids:
        status = catalog.poster_path(catalog.get(imdb_id)).stat()
        digest.update(f"{imdb_id} {status.st_size} {status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class BestEpochRecord(keras.callbacks.Callback):
    """After a ModelCheckpoint that saves the best epoch only: each time it has saved one, records that epoch, its
    value and the weights file's stamp (model.artifacts.weights_stamp) in `record` (written to a new file, then
    renamed), so that a resumed run knows what the saved weights are (WorkDirectory.resumed)."""

    def __init__(self, checkpoint: keras.callbacks.ModelCheckpoint, record: Path, weights: Path):
        super().__init__()
        self.checkpoint, self.record, self.weights = checkpoint, record, weights
        self.recorded = checkpoint.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.checkpoint.best == self.recorded or not self.weights.exists():
            return
        self.recorded = self.checkpoint.best
        described = {"epoch": epoch, "value": float(self.recorded), "weights": weights_stamp(self.weights)}
        written = self.record.with_name(f".{self.record.name}.tmp")
        written.write_text(json.dumps(described) + "\n")
        written.replace(self.record)


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping, going on from an interrupted run's best value and the epochs it had waited since it
    (Keras starts both again at every fit, so a resumed run waited `patience` epochs more than it should)."""

    def __init__(self, best: float | None, waited: int, **settings: object):
        super().__init__(**settings)
        self.resumed_best, self.resumed_wait = best, waited

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.resumed_best is not None:
            self.best, self.wait = self.resumed_best, self.resumed_wait


class CachedCopies(keras.utils.PyDataset):
    """Batches of cached frozen outputs and their targets (by head): each epoch, every poster appears once, as one
    of its copies."""

    def __init__(
        self, outputs: np.ndarray, labels: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int = 0
    ):
        super().__init__()
        self.outputs, self.labels, self.batch_size, self.seed = outputs, labels, batch_size, seed
        self.epoch = first_epoch  # a resumed run draws the copies and order its next epoch would have drawn
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(self.outputs.shape[1])
        self.copies = rng.integers(0, self.outputs.shape[0], size=self.outputs.shape[1])

    def __len__(self) -> int:
        return -(-self.outputs.shape[1] // self.batch_size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows = np.sort(self.order[batch * self.batch_size : (batch + 1) * self.batch_size])
        copies = self.copies[rows]
        return self.outputs[copies, rows].astype(np.float32), {name: y[rows] for name, y in self.labels.items()}

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()
