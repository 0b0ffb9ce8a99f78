"""Inference speed and memory of a trained model: one poster (decode, resize, model) and batches of 32,
and the resident memory of the process holding the serving model, run by Keras (TensorFlow) or by ONNX Runtime
from the model's export (`make onnx`) on --threads threads.

    python -m bench.inference --model var/runs/<catalog>/model-default --catalog ../shared/data [--runtime onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--runtime", choices=("keras", "onnx"), default="keras")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime's threads per inference (default 1)")
    args = parser.parse_args()

    import numpy as np

    from catalog import read_catalog
    from model.images import load_poster

    before = resident_mib()
    if args.runtime == "onnx":
        from model.onnx_model import OnnxGenreModel

        model = OnnxGenreModel.load(args.model, threads=args.threads)
    else:
        from model.artifacts import GenreModel

        model = GenreModel.load(args.model)
    catalog = read_catalog(args.catalog)
    paths = [catalog.poster_path(movie) for movie in catalog.movies[: max(args.runs, 64)]]
    posters = [path.read_bytes() for path in paths]
    runtime = f"ONNX Runtime, {args.threads} thread(s)" if args.runtime == "onnx" else "Keras"
    print(f"model {args.model} ({model.preset.name}, {model.input_size} px, {runtime}), {os.cpu_count()} CPUs")

    def one(data: bytes) -> None:
        model.predict(load_poster(data, model.input_size)[np.newaxis])

    for data in posters[:3]:
        one(data)  # warm-up
    single = []
    for data in posters[: args.runs]:
        start = time.perf_counter()
        one(data)
        single.append(time.perf_counter() - start)
    batch_times = []
    for start_row in range(0, 64, 32):
        batch = posters[start_row : start_row + 32]
        start = time.perf_counter()
        model.predict(np.stack([load_poster(data, model.input_size) for data in batch]))
        batch_times.append((time.perf_counter() - start) / len(batch))
    print(
        f"one poster: median {statistics.median(single) * 1000:.1f} ms, p95 {np.percentile(single, 95) * 1000:.1f} ms"
    )
    print(f"batch of 32: {min(batch_times) * 1000:.1f} ms per poster")
    print(f"resident memory: {resident_mib():.0f} MiB with the model loaded ({before:.0f} MiB before loading it)")


if __name__ == "__main__":
    main()
