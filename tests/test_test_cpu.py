"""tools/test_cpu.py, the plugin that says where the suite's CPU goes: run on a small generated suite, in one process
and spread over two by pytest-xdist, it counts the CPU each file's tests spent, and each test's, busiest first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

BUSY = """
import time

def test_busy():
    start = time.process_time()
    while time.process_time() - start < 0.4:
        pass
"""
IDLE = """
import time

def test_idle():
    time.sleep(0.4)  # wall-clock time, next to no CPU
"""


@pytest.mark.parametrize(
    "processes", [[], ["-p", "xdist.plugin", "-n", "2"]], ids=["one process", "two xdist processes"]
)
def test_the_summary_counts_each_files_cpu_busiest_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, processes: list[str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)  # the outer run may carry the plugin too
    # Only the plugins named: the installed ones (hypothesis, schemathesis...) cost each process seconds to load.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_busy=BUSY, test_idle=IDLE)
    result = pytester.runpytest_subprocess("-p", "tools.test_cpu", "-p", "no:cacheprovider", *processes)
    result.assert_outcomes(passed=2)
    by_file, by_test = result.stdout.str().split("CPU seconds by test file")[1].split("CPU seconds by test (")
    rows = re.findall(r"^\s*([\d.]+)  (\S+)$", by_file, re.MULTILINE)
    assert [file for _, file in rows] == ["test_busy.py", "test_idle.py"]
    assert float(rows[0][0]) >= 0.35 and float(rows[1][0]) < 0.2
    assert re.search(r"^\s*[\d.]+  all 2 files$", by_file, re.MULTILINE)
    tests = re.findall(r"^\s*([\d.]+)  (\S+)$", by_test, re.MULTILINE)
    assert [test for _, test in tests] == ["test_busy.py::test_busy", "test_idle.py::test_idle"]
    assert float(tests[0][0]) >= 0.35 and float(tests[1][0]) < 0.2
