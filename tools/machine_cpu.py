"""Where a command's CPU goes on the whole machine: runs the command, samples every process in /proc twice a second
meanwhile, and prints the CPU seconds of the whole machine during the run, those that the command's own process
tree was counted (what /usr/bin/time gives: the children it waited for), and those of every process that started
during the run, by name (Chromium by its --type). Processes that no one waits for, such as Chromium's when they
outlive their chromedriver, are missing from the second figure and found in the third. Linux only.

    python -m tools.machine_cpu -- make test
    python -m tools.machine_cpu -- .venv/bin/python -m pytest -q tests/test_scraper.py

A process that starts and ends between two samples is not seen; the whole machine's figure still counts it. The last
line is one JSON object: {"machine_s", "command_s", "by_name": {name: seconds}}. Kept here because ps and pidstat
show processes alive at one moment, not those that came and went during a run."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.5


def machine_ticks() -> int:
    """CPU ticks the machine has spent busy since boot: user, nice, system, irq, softirq, steal."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(value) for value in fields[:3] + fields[5:8])


def process_name(pid: str, name: str) -> str:
    if name != "chromium":
        return name
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return name
    kind = next((part.split("=", 1)[1] for part in command_line.split() if part.startswith("--type=")), "browser")
    return f"chromium {kind}"


def processes() -> dict[tuple[int, int], tuple[str, int]]:
    """(pid, start time) -> (name, CPU ticks of its own) of every process now."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        found[(int(pid), int(fields[19]))] = (name, int(fields[11]) + int(fields[12]))
    return found


def waited_seconds() -> float:
    """CPU seconds of this process's children that have been waited for, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    before = processes()
    start, waited_before = machine_ticks(), waited_seconds()
    child = subprocess.Popen(command)
    last: dict[tuple[int, int], tuple[str, int]] = {}
    while child.poll() is None:
        for key, (name, ticks) in processes().items():
            if key not in before:
                last[key] = (process_name(str(key[0]), name), ticks)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(SAMPLE_S)
    machine_s = (machine_ticks() - start) / TICKS
    command_s = waited_seconds() - waited_before
    by_name: Counter = Counter()
    for name, ticks in last.values():
        by_name[name] += ticks / TICKS
    print(f"whole machine: {machine_s:.1f} s of CPU; the command's process tree: {command_s:.1f} s")
    for name, seconds in by_name.most_common(12):
        print(f"{seconds:8.1f} s  {name}")
    summary = {
        "machine_s": round(machine_s, 1),
        "command_s": round(command_s, 1),
        "by_name": {name: round(seconds, 1) for name, seconds in by_name.most_common()},
    }
    print(json.dumps(summary))
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
