"""Explanation speed: the time from an uploaded poster to its heatmap for one genre (model/explain.py: decode,
occlusion_map, overlay_png) with a model's ONNX export, on 1 and 2 threads, for a few grid sizes. The target is 2 s
from submit to result, about 1.2 s of it for this, the rest for the job around it. A forward pass of one poster on one
thread is timed in the same run, as a yardstick of how busy the machine is (49 ms for a 128 x 128 model, the `fast`
preset's shape, on the quiet 2-core Xeon, bench/README.md; the `default` preset's 128 x 192 took 105-107 ms at load
average 1-3), and the map's CPU time is reported beside its wall-clock time: on a busy machine it is the better
guess of the quiet machine's time (divided by the threads, where they scale).

--compare also measures the choices, for each poster's most probable genre: the blurred fill against the ImageNet
mean (how much occluding anywhere shifts the genre, and the drop when the three strongest cells are occluded at once
against three cells drawn at random), and each grid against the finest one (correlation of the maps upsampled to the
poster). The last line is one JSON object.

    python -m bench.explain_speed --model var/runs/<catalog>/model-default --catalog ../shared/data [--compare]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

YARDSTICK_MS = 49.0
"""One poster, one thread, a 128 x 128 model (the `default` preset before it took 128 x 192, the `fast` preset's
shape), ONNX Runtime, quiet machine (bench/README.md)."""
DELETED_CELLS = 3
RANDOM_DRAWS = 5


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 1)


def yardstick(model, poster: np.ndarray, runs: int) -> tuple[float, float]:
    """Median seconds of one forward pass of one poster, wall-clock and CPU time of this process."""
    model.predict(poster[np.newaxis])
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        model.predict(poster[np.newaxis])
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def time_explanation(model, data: bytes, grid: int) -> dict[str, float]:
    """Seconds of each stage for one uploaded poster, its most probable genre explained."""
    from model.explain import occlusion_map, overlay_png
    from model.images import decode_poster, poster_array

    start = time.perf_counter()
    image = decode_poster(data, model.input_size)
    decoded = time.perf_counter()
    genre = model.genres[int(np.argmax(model.predict(poster_array(image, model.input_size)[np.newaxis]).genres[0]))]
    chosen, cpu = time.perf_counter(), time.process_time()  # the job is told the genre; this pass is not counted
    explanation = occlusion_map(model, image, genre, grid=grid)
    mapped, map_cpu = time.perf_counter(), time.process_time() - cpu
    overlay_png(image, explanation)
    drawn = time.perf_counter()
    return {"decode": decoded - start, "map": mapped - chosen, "overlay": drawn - mapped, "map_cpu": map_cpu}


def speed(args: argparse.Namespace, posters: list[bytes]) -> dict:
    from model.images import load_poster
    from model.onnx_model import OnnxGenreModel

    results = {}
    for threads in args.threads:
        model = OnnxGenreModel.load(args.model, threads=threads)
        model.predict(np.stack([load_poster(data, model.input_size) for data in posters]))  # warm-up
        for grid in args.grids:
            runs = [time_explanation(model, data, grid) for data in posters for _ in range(args.runs)]
            stages = {stage: [run[stage] for run in runs] for stage in runs[0]}
            totals = [run["decode"] + run["map"] + run["overlay"] for run in runs]
            row = {
                "passes": grid * grid + 1,
                **{f"{stage}_ms": milliseconds(statistics.median(values)) for stage, values in stages.items()},
                "total_ms": milliseconds(statistics.median(totals)),
                "total_min_ms": milliseconds(min(totals)),
                "per_pass_ms": milliseconds(statistics.median(stages["map"]) / (grid * grid + 1)),
            }
            results[f"threads={threads} grid={grid}"] = row
            print(
                f"{threads} thread(s), grid {grid} x {grid} ({row['passes']} passes): map {row['map_ms']:,.0f} ms "
                f"({row['per_pass_ms']:.1f} ms a pass), overlay {row['overlay_ms']:.0f} ms, decode "
                f"{row['decode_ms']:.0f} ms; total median {row['total_ms']:,.0f} ms, best {row['total_min_ms']:,.0f} ms"
                f" over {len(runs)} run(s); the map's CPU time {row['map_cpu_ms']:,.0f} ms "
                f"({row['map_cpu_ms'] / threads:,.0f} ms a thread)",
                flush=True,
            )
    return results


def shape_difference(first: np.ndarray, second: np.ndarray) -> float:
    """Mean absolute difference of two maps, each divided by its strongest value (what the colours show)."""
    return float(np.abs(first / max(np.abs(first).max(), 1e-12) - second / max(np.abs(second).max(), 1e-12)).mean())


def upsampled(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The heatmap stretched to `size` (width, height), bilinear."""
    return np.asarray(Image.fromarray(heatmap.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))


def deletion_drops(model, poster: np.ndarray, explanation, rng: np.random.Generator) -> tuple[float, float]:
    """The genre's drop in probability when the patches of the DELETED_CELLS most-raising cells are occluded at once
    (with the explanation's fill), and the mean drop for as many cells drawn at random."""
    from model.explain import fill_image, patch_bounds

    grid, column = explanation.grid, model.genres.index(explanation.genre)
    filler = fill_image(poster, explanation.fill, grid)
    rows, columns = (patch_bounds(grid, side, explanation.patch) for side in poster.shape[:2])
    order = np.argsort(-explanation.heatmap.reshape(-1), kind="stable")[:DELETED_CELLS]
    chosen = [order] + [rng.choice(grid * grid, DELETED_CELLS, replace=False) for _ in range(RANDOM_DRAWS)]
    batch = np.repeat(poster[np.newaxis], len(chosen), axis=0)
    for row, cells in enumerate(chosen):
        for cell in cells:
            (top, bottom), (left, right) = rows[cell // grid], columns[cell % grid]
            batch[row, top:bottom, left:right] = filler[top:bottom, left:right]
    drops = explanation.probability - model.predict(batch).genres[:, column]
    return float(drops[0]), float(drops[1:].mean())


def compare(args: argparse.Namespace, posters: list[bytes]) -> dict:
    """The fills (on the default grid, or the reference grid where it is smaller) and the grids, on the model with the
    most threads timed."""
    from model.explain import DEFAULT_GRID, occlusion_map
    from model.images import load_poster
    from model.logit import logit
    from model.onnx_model import OnnxGenreModel

    model = OnnxGenreModel.load(args.model, threads=max(args.threads))
    rng = np.random.default_rng(0)
    size = model.input_size
    fills: dict[str, dict[str, list[float]]] = {"blur": {}, "mean": {}}
    grids: dict[int, list[float]] = {grid: [] for grid in args.compare_grids[:-1]}
    spaces: list[float] = []
    fill_grid = min(DEFAULT_GRID, args.compare_grids[-1])
    for data in posters:
        poster = load_poster(data, size)
        probabilities = model.predict(poster[np.newaxis]).genres[0]
        genre = model.genres[int(np.argmax(probabilities))]
        maps, explained = {}, {}
        for fill, found in fills.items():
            explanation = explained[fill] = occlusion_map(model, poster, genre, grid=fill_grid, fill=fill)
            maps[fill] = explanation.heatmap
            top, random = deletion_drops(model, poster, explanation, rng)
            for key, value in {
                "bias": float(explanation.heatmap.mean()),
                "spread": float(np.abs(explanation.heatmap).mean()),
                "top_drop": top,
                "random_drop": random,
            }.items():
                found.setdefault(key, []).append(value)
        fills["blur"].setdefault("correlation_with_mean", []).append(
            float(np.corrcoef(maps["blur"].ravel(), maps["mean"].ravel())[0, 1])
        )
        p = float(explained["blur"].probability)
        logit_map = logit(np.float64(p)) - logit(p - maps["blur"].astype(np.float64))
        spaces.append(shape_difference(maps["blur"], logit_map))
        reference = upsampled(occlusion_map(model, poster, genre, grid=args.compare_grids[-1]).heatmap, size)
        for grid, found in grids.items():
            coarse = upsampled(occlusion_map(model, poster, genre, grid=grid).heatmap, size)
            found.append(float(np.corrcoef(coarse.ravel(), reference.ravel())[0, 1]))
        print(f"  compared poster {len(spaces)} of {len(posters)} ({genre} {p:.2f})", flush=True)
    summary = {
        "fills": {
            fill: {key: round(statistics.mean(values), 4) for key, values in found.items()}
            for fill, found in fills.items()
        },
        "grids": {str(grid): round(statistics.mean(values), 3) for grid, values in grids.items()},
        "probability_vs_logit_difference": round(statistics.mean(spaces), 3),
        "reference_grid": args.compare_grids[-1],
    }
    for fill, found in summary["fills"].items():
        print(
            f"fill {fill}: mean of the map {found['bias'] * 100:+.2f} pts, mean |map| {found['spread'] * 100:.2f} pts;"
            f" occluding the {DELETED_CELLS} strongest cells drops the genre {found['top_drop'] * 100:.1f} pts, "
            f"{DELETED_CELLS} random cells {found['random_drop'] * 100:.1f} pts"
        )
    print(f"blurred and mean fills' maps: correlation {summary['fills']['blur']['correlation_with_mean']:.2f}")
    for grid, value in summary["grids"].items():
        print(
            f"grid {grid} x {grid} against {args.compare_grids[-1]} x {args.compare_grids[-1]}: correlation {value:.3f}"
        )
    print(
        "probability and logit maps (same signs and order of cells by construction): mean difference once scaled to "
        f"their strongest cell {summary['probability_vs_logit_difference']:.3f}"
    )
    return summary


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model directory with its ONNX export")
    parser.add_argument("--catalog", type=Path, required=True, help="a catalog whose first posters are explained")
    parser.add_argument("--posters", type=int, default=3, help="posters timed (default 3)")
    parser.add_argument("--runs", type=int, default=1, help="runs per poster, grid and thread count (default 1)")
    parser.add_argument("--grids", type=integers, default=[5, 6, 7, 8], help="grid sizes timed (default 5,6,7,8)")
    parser.add_argument("--threads", type=integers, default=[1, 2], help="ONNX Runtime threads (default 1,2)")
    parser.add_argument("--compare", action="store_true", help="also compare the fills and the grids")
    parser.add_argument("--compare-posters", type=int, default=6, help="posters compared (default 6)")
    parser.add_argument(
        "--compare-grids", type=integers, default=[5, 6, 7, 8, 12], help="grids compared, the last the reference"
    )
    parser.add_argument("--quick", action="store_true", help="one poster, grid 4, one thread: that it works")
    args = parser.parse_args()
    if args.quick:
        args.posters, args.runs, args.grids, args.threads = 1, 1, [4], [1]
        args.compare_posters, args.compare_grids = 1, [3, 4]

    from catalog import read_catalog
    from model.images import load_poster
    from model.onnx_model import OnnxGenreModel

    catalog = read_catalog(args.catalog)
    count = max(args.posters, args.compare_posters if args.compare else 0)
    posters = [catalog.poster_path(movie).read_bytes() for movie in catalog.movies[:count]]
    model = OnnxGenreModel.load(args.model, threads=1)
    stick, stick_cpu = yardstick(model, load_poster(posters[0], model.input_size), runs=5 if args.quick else 20)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"model {args.model} ({model.preset.name}, {model.preset.input_label}), {os.cpu_count()} CPUs, load average "
        f"{load:.2f}; one poster on one thread: {stick * 1000:.1f} ms ({stick * 1000 / YARDSTICK_MS:.1f} x the quiet "
        f"machine's {YARDSTICK_MS:.0f} ms for a 128 x 128 model), {stick_cpu * 1000:.1f} ms of CPU time",
        flush=True,
    )
    del model
    summary: dict = {
        "yardstick_ms": milliseconds(stick),
        "yardstick_cpu_ms": milliseconds(stick_cpu),
        "load_average": round(load, 2),
        "speed": speed(args, posters[: args.posters]),
    }
    if args.compare:
        summary["compare"] = compare(args, posters[: args.compare_posters])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
