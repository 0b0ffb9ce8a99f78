"""tools/machine_cpu.py: the CPU of the processes that a command leaves for no one to wait for is found."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tools.machine_cpu import main

# A parent that hands 0.6 s of work to a grandchild it does not wait for (double fork), and ends with status 3. The
# grandchild says when its work is done and lives until the parent has ended, so that the samples see all of its work
# however long a loaded machine makes it take.
ORPHANING = """
import os, sys, time
done_read, done_write = os.pipe()
parent_alive_read, parent_alive_write = os.pipe()
if os.fork() == 0:
    if os.fork() == 0:
        os.close(parent_alive_write)
        start = time.process_time()
        while time.process_time() - start < 0.6:
            pass
        os.write(done_write, b"done")
        os.read(parent_alive_read, 1)
    os._exit(0)
os.close(done_write)  # a grandchild that dies before its word ends the read below
os.wait()
os.read(done_read, 4)
time.sleep(1.2)
sys.exit(3)
"""


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads Linux's /proc")
def test_the_work_of_an_unwaited_process_is_counted_for_the_machine_not_the_command(capsys) -> None:
    assert main(["--", sys.executable, "-c", ORPHANING]) == 3  # the command's exit status
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seen = sum(summary["by_name"].values())
    assert seen >= 0.5, summary  # the grandchild, sampled while it ran
    assert summary["command_s"] < 0.4, summary  # the grandchild's CPU is not the command's own
    assert summary["machine_s"] >= 0.5, summary


def test_a_command_is_required(capsys) -> None:
    with pytest.raises(SystemExit):
        main([])
    assert "give the command to run after --" in capsys.readouterr().err
