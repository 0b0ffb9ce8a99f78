"""Inference speed and memory of a trained model: one poster (decode, resize, model) and batches of 32,
and the resident memory of the process holding the serving model, run by Keras (TensorFlow) or by ONNX Runtime
from the model's export (`make onnx`) on --threads threads.

    python -m bench.inference --model var/runs/<catalog>/model-default --catalog ../shared/data [--runtime onnx]

With --runtime onnx, --precision float32,int8 times the float32 export against the int8 one (`make onnx` writes both)
in one run, interleaved: each poster, then each batch, goes through both models in turn, the order swapped every
time, so that whatever else the machine runs weighs on both alike; it prints each one's figures, the ratios (float32
/ int8: how many times faster int8 is), the resident memory of a process holding each model alone (measured in a
fresh process per precision, after the same warm-up: anonymous memory is the process's own, file-backed the mapped
weights, which the workers share), the multiply-adds a poster's convolutions take and how many a second each
precision runs (set against what the cores can do: bench/README.md), and the int8 export's recorded check. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from bench import at_least

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 32


def resident_mib(field: str = "VmRSS") -> float:
    """A field of /proc/self/status ("VmRSS", "RssAnon", "RssFile"), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_model(model_dir: Path, runtime: str, threads: int, precision: str | None = None) -> object:
    if runtime == "onnx":
        from model.onnx_model import OnnxGenreModel

        return OnnxGenreModel.load(model_dir, threads=threads, precision=precision)
    from model.artifacts import GenreModel

    return GenreModel.load(model_dir)


def process_memory(model_dir: Path, precision: str, threads: int, posters: list[bytes]) -> dict[str, float]:
    """In a fresh process: its resident memory before loading the model and after it has run one poster and a batch
    of BATCH (MiB; anonymous and file-backed parts)."""
    import numpy as np

    from model.images import load_poster

    before = resident_mib()
    model = load_model(model_dir, "onnx", threads, precision)
    model.predict(load_poster(posters[0], model.input_size)[np.newaxis])
    model.predict(np.stack([load_poster(data, model.input_size) for data in posters[:BATCH]]))
    return {
        "before_mib": round(before, 1),
        "rss_mib": round(resident_mib(), 1),
        "anonymous_mib": round(resident_mib("RssAnon"), 1),
        "file_mib": round(resident_mib("RssFile"), 1),
        "served": model.precision,
    }


def convolution_macs(model_dir: Path) -> int:
    """The multiply-adds of one poster through the float32 export's convolutions (output pixels x output channels x
    the kernel's inputs), from ONNX's shape inference: what a poster costs at the least, whatever runs it."""
    import numpy as np
    import onnx

    from model.onnx_model import ONNX_FILE

    graph = onnx.shape_inference.infer_shapes(onnx.load(model_dir / ONNX_FILE, load_external_data=False)).graph
    shapes = {value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim] for value in graph.value_info}
    kernels = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    return sum(
        int(np.prod(shapes[node.output[0]][2:]) * np.prod(kernels[node.input[1]]))
        for node in graph.node
        if node.op_type == "Conv"
    )


def compare_precisions(args: argparse.Namespace, precisions: list[str], posters: list[bytes]) -> None:
    """float32 against int8 (or any PRECISIONS), interleaved in one process; memory in a fresh process each."""
    import numpy as np

    from model.images import load_poster
    from model.onnx_model import INT8_EXPORT_FILE

    models = {precision: load_model(args.model, "onnx", args.threads, precision) for precision in precisions}
    size = next(iter(models.values())).input_size
    label = next(iter(models.values())).preset.input_label
    print(
        f"model {args.model} ({label}, ONNX Runtime, {args.threads} thread(s)), {os.cpu_count()} CPUs; "
        + ", ".join(f"{name}: serves {model.precision}" for name, model in models.items())
    )
    for data in posters[:3]:  # warm-up
        for model in models.values():
            model.predict(load_poster(data, size)[np.newaxis])
    single: dict[str, list[float]] = {name: [] for name in models}
    batches: dict[str, list[float]] = {name: [] for name in models}

    def turns(number: int) -> list[str]:
        return list(models) if number % 2 == 0 else list(reversed(models))

    for number, data in enumerate(posters[: args.runs]):
        for name in turns(number):
            start = time.perf_counter()
            models[name].predict(load_poster(data, size)[np.newaxis])
            single[name].append(time.perf_counter() - start)
    rounds = max(2, args.batches)
    for number in range(rounds):
        batch = posters[(number * BATCH) % len(posters) :][:BATCH]
        for name in turns(number):
            start = time.perf_counter()
            models[name].predict(np.stack([load_poster(data, size) for data in batch]))
            batches[name].append((time.perf_counter() - start) / len(batch))
    figures: dict[str, dict] = {}
    for name in list(models):
        figures[name] = {
            "one_median_ms": round(statistics.median(single[name]) * 1000, 1),
            "one_p95_ms": round(float(np.percentile(single[name], 95)) * 1000, 1),
            "batch_per_poster_ms": round(statistics.median(batches[name]) * 1000, 2),
        }
        print(
            f"{name:>8}: one poster median {figures[name]['one_median_ms']:.1f} ms, p95 "
            f"{figures[name]['one_p95_ms']:.1f} ms; batch of {BATCH}: "
            f"{figures[name]['batch_per_poster_ms']:.2f} ms per poster (median of {rounds} batches)"
        )
    macs = convolution_macs(args.model)
    figures["convolution_gmacs"] = round(macs / 1e9, 3)
    for name in list(models):
        figures[name]["gmacs_per_second"] = round(macs / 1e6 / figures[name]["batch_per_poster_ms"], 1)
    print(
        f"a poster is {macs / 1e9:.2f} G multiply-adds in the convolutions; in batches (decoding included) "
        + ", ".join(f"{name} runs {figures[name]['gmacs_per_second']:.0f} G a second" for name in models)
        + f" on {args.threads} thread(s)"
    )
    names = list(models)
    models.clear()  # their memory is measured in fresh processes
    context = multiprocessing.get_context("spawn")  # a fresh process each: nothing of the other model in it
    for name in names:
        with context.Pool(1) as pool:
            figures[name]["memory"] = pool.apply(process_memory, (args.model, name, args.threads, posters))
        memory = figures[name]["memory"]
        print(
            f"{name:>8}: resident memory {memory['rss_mib']:.0f} MiB with the model loaded and run "
            f"({memory['anonymous_mib']:.0f} MiB its own, {memory['file_mib']:.0f} MiB file-backed; "
            f"{memory['before_mib']:.0f} MiB before loading it)"
        )
    if "float32" in figures and "int8" in figures:
        ratios = {
            key: round(figures["float32"][key] / figures["int8"][key], 2)
            for key in ("one_median_ms", "one_p95_ms", "batch_per_poster_ms")
        }
        figures["ratio_float32_over_int8"] = ratios
        print(
            f"int8 is {ratios['one_median_ms']:.2f}x as fast on one poster (median), "
            f"{ratios['batch_per_poster_ms']:.2f}x per poster in batches of {BATCH}"
        )
    recorded = args.model / INT8_EXPORT_FILE
    if recorded.is_file():
        check = json.loads(recorded.read_text())["check"]
        figures["int8_check"] = check
        print(f"int8 check ({'passed' if check['passed'] else 'failed'}) on {check['held_out']}: {check['summary']}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--runs", type=at_least(1), default=50)
    parser.add_argument("--runtime", choices=("keras", "onnx"), default="keras")
    parser.add_argument(
        "--threads", type=at_least(1), default=1, help="ONNX Runtime's threads per inference (default 1)"
    )
    parser.add_argument(
        "--precision",
        help="ONNX only: auto, float32 or int8, or several separated by commas (float32,int8) to compare them",
    )
    parser.add_argument(
        "--batches", type=at_least(1), default=6, help="with several precisions: batches timed (default 6)"
    )
    args = parser.parse_args()

    import numpy as np

    from catalog import read_catalog
    from model.images import load_poster

    catalog = read_catalog(args.catalog)
    paths = [catalog.poster_path(movie) for movie in catalog.movies[: max(args.runs, 2 * BATCH)]]
    posters = [path.read_bytes() for path in paths]
    precisions = [name.strip() for name in (args.precision or "").split(",") if name.strip()]
    if precisions and args.runtime != "onnx":
        parser.error("--precision needs --runtime onnx")
    if len(precisions) > 1:
        compare_precisions(args, precisions, posters)
        return

    before = resident_mib()
    model = load_model(args.model, args.runtime, args.threads, precisions[0] if precisions else None)
    runtime = f"ONNX Runtime, {model.precision}, {args.threads} thread(s)" if args.runtime == "onnx" else "Keras"
    print(f"model {args.model} ({model.preset.name}, {model.preset.input_label}, {runtime}), {os.cpu_count()} CPUs")

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
    for start_row in range(0, 2 * BATCH, BATCH):
        batch = posters[start_row : start_row + BATCH]
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
