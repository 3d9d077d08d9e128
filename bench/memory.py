"""Peak resident memory of the running process, for the benchmarks' figures."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_gib() -> float:
    """Peak resident memory of this process (GiB).

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``ru_maxrss`` survives ``execve``,
    so a contender spawned by a parent that built a large store would report the parent's
    peak, not its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
