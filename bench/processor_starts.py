"""How many Processors one suite run starts, and what each costs: the suite's CPU is mostly theirs.

``.venv/bin/python -m bench.processor_starts [behave arguments…]`` runs ``behave`` once on the embedded services
(warm cache in ``SUITE_CACHE_DIR``, else a folder of its own) in a control group (:mod:`bench.cpu_account`) and
samples every 20 ms each ``python -m processor`` in it: the last ``utime + stime`` seen is that Processor's CPU (a
process that ends between two samples loses at most one period of it). It prints the run's total, the
Processors' count and sum, their median CPU and life, and the heaviest ones.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cpu_account import Group, Sampler, account, argv_of, kind_of

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PERIOD = 0.02


def _cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


class Starts(Sampler):
    """Every Processor seen in ``group``: its last CPU reading, when it was first and last seen."""

    def __init__(self, group: Group) -> None:
        super().__init__(PERIOD)
        self.group = group
        self.seen: dict[int, tuple[float, float, float]] = {}

    def sample(self) -> None:
        now = time.monotonic()
        for pid in self.group.pids():
            if kind_of(argv_of(pid)) == "Processor":
                cpu = _cpu(pid)
                if cpu is not None:
                    first = self.seen[pid][1] if pid in self.seen else now
                    self.seen[pid] = (cpu, first, now)


def main(argv: list[str]) -> int:
    cache = os.environ.get("SUITE_CACHE_DIR") or tempfile.mkdtemp(prefix="bench-starts-")
    with account() as group:
        if group is None:
            print("processor_starts: cannot make a control group here (needs root or a delegated cgroup v2 subtree)")
            return 2
        with Starts(group) as starts:
            began = time.monotonic()
            proc = subprocess.run([str(REPO / ".venv" / "bin" / "behave"), "-D", "services=embedded",
                                   "-f", "progress", *argv], cwd=REPO, env=dict(os.environ, SUITE_CACHE_DIR=cache),
                                  capture_output=True, text=True, preexec_fn=group.join)
            wall = time.monotonic() - began
        total = group.cpu_seconds()
    runs = sorted((cpu, last - first) for cpu, first, last in starts.seen.values())
    print(f"behave exited {proc.returncode} after {wall:.1f} s; the run's processes used {total:.1f} s of CPU")
    if not runs:
        print("no Processor was seen")
        return proc.returncode
    short = [cpu for cpu, life in runs if life < 5]
    median_cpu, median_life = statistics.median(c for c, _ in runs), statistics.median(life for _, life in runs)
    print(f"{len(runs)} Processors: {sum(c for c, _ in runs):.1f} s of CPU; median {median_cpu:.2f} s of CPU and"
          f" {median_life:.2f} s of life; {len(short)} lived under 5 s, {sum(short):.1f} s of CPU")
    for cpu, life in runs[-5:]:
        print(f"  {cpu:6.2f} s of CPU, lived {life:6.1f} s")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
