"""The heavy process lowers its priority where the kernel counts it: its threads' niceness and, under Linux's
``sched_autogroup`` (each BentoML worker in a session, so a group, of its own), its group's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import os
from serving.heavy import lower_priority
lower_priority(7)
group = "none"
if os.path.exists("/proc/self/autogroup"):  # empty in the kernel's default group (a task under init's session)
    group = (open("/proc/self/autogroup").read().split() or ["default"])[-1]
print(os.getpriority(os.PRIO_PROCESS, 0), group)
"""


def _probe(own_session: bool) -> list[str]:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          start_new_session=own_session, cwd=Path(__file__).resolve().parents[2]).stdout.split()


def test_the_heavy_process_lowers_its_threads_and_its_autogroup():
    if not sys.platform.startswith("linux"):
        pytest.skip("niceness by thread and autogroups are Linux's")
    out = _probe(own_session=True)  # as a BentoML worker runs: a session of its own
    assert int(out[0]) >= 7  # from a shell at 0: 7 (more if the test itself runs niced)
    if out[1] != "none":  # a kernel with autogroups: the new session's group is lowered too
        assert int(out[1]) == 7
    before = "none"
    if out[1] != "none":  # this test's own group: empty to read in the kernel's default group, as under some CI runners
        before = (Path("/proc/self/autogroup").read_text().split() or ["default"])[-1]
    shared = _probe(own_session=False)  # in this test's session: its group (this test's too) is left alone
    assert int(shared[0]) >= 7 and shared[1] == before
