"""Training speed: the naive way (every epoch runs all of VGG-16 on freshly augmented batches) against
ours (blocks 1-4 computed once per poster and augmented copy, then only block 5 and the head per epoch),
in the same run, on the same posters.

    python -m bench.training_speed --catalog ../shared/data --weights ../shared/weights/vgg16_imagenet_notop.h5
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def epoch_timer():
    """A Keras callback that records the wall time of each epoch (`times`) and gives their mean (`per_epoch`); made
    here, so that `--help` does not wait for Keras to import."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.times.append(time.perf_counter() - self.started)

        def per_epoch(self) -> float:
            timed = self.times[1:] or self.times  # the first epoch also traces the graph
            return sum(timed) / len(timed)

    return EpochTimer()


def genre_batches(outputs, labels, batch_size: int):
    """The training batches of model.train, with the genre targets alone (the naive way trains genres only)."""
    from model.network import GENRES_LAYER
    from model.work_directory import CachedCopies

    class CachedGenres(CachedCopies):
        def __getitem__(self, batch: int):
            inputs, targets = super().__getitem__(batch)
            return inputs, targets[GENRES_LAYER]

    return CachedGenres(outputs, {GENRES_LAYER: labels}, batch_size, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--posters", type=int, default=512, help="how many posters to train on")
    parser.add_argument("--epochs", type=int, default=3, help="epochs run each way; the first (tracing) is not timed")
    args = parser.parse_args()

    import keras
    import numpy as np

    from catalog import GENRES, read_catalog
    from model.network import GENRES_LAYER, split_network
    from model.presets import get_preset
    from model.split import with_target_genres
    from model.train import fit_end_to_end, inverse_frequency_weights
    from model.train import weighted_binary_crossentropy as weighted_bce
    from model.work_directory import WorkDirectory

    catalog = read_catalog(args.catalog)
    preset = get_preset(args.preset)
    ids = [movie.imdb_id for movie in with_target_genres(catalog.movies)][: args.posters]
    labels = catalog.labels(GENRES, ids).astype(np.float32)
    print(f"{len(ids)} posters from {args.catalog}, preset {preset.name} ({preset.input_label}), {os.cpu_count()} CPUs")

    naive_timer = epoch_timer()
    fit_end_to_end(catalog, preset, args.weights, ids, epochs=args.epochs, callbacks=[naive_timer])
    naive_epoch = naive_timer.per_epoch()
    print(f"naive: {naive_epoch:.1f} s per epoch (epochs: {', '.join(f'{t:.1f}' for t in naive_timer.times)} s)")

    scratch = Path(tempfile.mkdtemp())
    try:
        frozen, trainable = split_network(preset, len(GENRES), args.weights)
        genres_only = keras.Model(trainable.input, trainable.get_layer(GENRES_LAYER).output)  # as the naive way
        work = WorkDirectory.open(scratch / "model", {"bench": True})
        start = time.perf_counter()
        cached = work.frozen_outputs("train", frozen, catalog, ids, preset, preset.augmented_copies, 0, False)
        cache_seconds = time.perf_counter() - start
        genres_only.compile(
            optimizer=keras.optimizers.Adam(preset.learning_rate), loss=weighted_bce(inverse_frequency_weights(labels))
        )
        cached_timer = epoch_timer()
        genres_only.fit(
            genre_batches(cached.maps, labels, preset.batch_size),
            epochs=args.epochs,
            verbose=0,
            callbacks=[cached_timer],
        )
        cached_epoch = cached_timer.per_epoch()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    copies = 1 + preset.augmented_copies
    print(
        f"cached: frozen layers once for {copies} copies in {cache_seconds:.1f} s, then {cached_epoch:.2f} s per epoch"
    )
    for epochs in (1, preset.epochs, 30):
        naive = naive_epoch * epochs
        ours = cache_seconds + cached_epoch * epochs
        print(f"  {epochs:>3} epochs: naive {naive:8.1f} s   cached {ours:8.1f} s   gain x{naive / ours:.1f}")
    print(f"per-epoch gain once cached: x{naive_epoch / cached_epoch:.0f}")


if __name__ == "__main__":
    main()
