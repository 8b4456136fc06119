"""Peak memory of this process, for every side of the benchmarks (stdlib only: the peers'
scripts import it from their own virtual environments)."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's peak RSS. Not ru_maxrss alone: Linux keeps it across exec, so a process
    started from a bigger one reports the parent's size; /proc's VmHWM starts at exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
