"""A pytest plugin that runs the test files whose tests took longest in the previous run first, each file's tests in
their own order, so that pytest-xdist's processes, which take tests in collection order, end together instead of one
finishing a slow file alone while the others wait (longest jobs first). Each run records its tests' durations
(setup, call and teardown) in pytest's cache; a run without a record (a fresh clone, CI, `--cache-clear`) keeps the
collection order. Under pytest-xdist the controller reads the record once and hands it to every worker, so all of
them order the same tests the same way even if another run rewrites the cache meanwhile.

Enabled for the suite by `addopts` in pyproject.toml. Kept here because pytest-xdist orders by file only
(`--dist loadfile` gives each file to one process, and the slowest file alone is half a process's share)."""

from __future__ import annotations

from collections import Counter

import pytest

CACHE_KEY = "posterbench/test-durations"
WORKER_INPUT_KEY = "posterbench_test_durations"

durations: Counter = Counter()  # this run's seconds by test id (the controller's, or the only process's)


def previous_durations(config: pytest.Config) -> dict[str, float]:
    """The record of the run before: from the controller under pytest-xdist, else from the cache."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return workerinput.get(WORKER_INPUT_KEY, {})
    cache = getattr(config, "cache", None)
    recorded = cache.get(CACHE_KEY, {}) if cache is not None else {}
    return recorded if isinstance(recorded, dict) else {}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist's controller, for each worker it starts: the record the workers order by."""
    node.workerinput[WORKER_INPUT_KEY] = previous_durations(node.config)


def slowest_files_first(items: list[pytest.Item], seconds_by_test: dict[str, float]) -> list[pytest.Item]:
    """`items` with the files whose tests took most seconds in all first; ties and each file's tests keep their
    order (a stable sort on the file's total)."""
    by_file: Counter = Counter()
    for item in items:
        seconds = seconds_by_test.get(item.nodeid, 0.0)
        by_file[item.nodeid.split("::")[0]] += seconds if isinstance(seconds, int | float) else 0.0
    return sorted(items, key=lambda item: -by_file[item.nodeid.split("::")[0]])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    recorded = previous_durations(config)
    if recorded:
        items[:] = slowest_files_first(items, recorded)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each phase's duration (the workers' reports reach the controller here too)."""
    durations[report.nodeid] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The record for the next run: this run's durations over the earlier record (a run of some tests keeps the
    others' durations; those of tests since removed stay, matching nothing)."""
    config = session.config
    cache = getattr(config, "cache", None)
    if cache is None or hasattr(config, "workerinput") or not durations:
        return
    record = previous_durations(config) | {nodeid: round(seconds, 3) for nodeid, seconds in durations.items()}
    cache.set(CACHE_KEY, record)
