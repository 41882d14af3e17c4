"""Whole-process timing shared by the benchmark scripts."""

from __future__ import annotations

import subprocess
import sys


def timed_process(cmd) -> tuple[float, float]:
    """(wall seconds, peak resident memory in GiB) of ``cmd``, run in a fresh wrapper process.

    The wrapper has exactly one child, so RUSAGE_CHILDREN's ru_maxrss is that child's peak.
    """
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:]); dt = time.perf_counter() - t; "
               "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", wrapper, *map(str, cmd)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    wall, rss_kib = out.stdout.split()[-2:]
    return float(wall), int(rss_kib) / 2**20
