"""The machine this process runs on: its name as the cluster names it, and how its C library hands out memory (no
torch: the dispatcher head uses it too)."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import socket


def node_name() -> str:
    """The Slurm node this runs on (``SLURMD_NODENAME``: several slurmd "nodes" may share one host), else the short
    host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # the largest glibc accepts on 64-bit machines
TRIM_THRESHOLD = 1024**3


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process reuse the memory it frees instead of handing it back to the system (glibc's malloc).

    By default glibc maps every block over a few MiB afresh and unmaps it when freed, and gives the top of its heap
    back once enough of it is free: a training step at the paper size (batch 2048, width 512) then touches
    ~8,000 fresh zeroed pages that the previous step had just returned, each a page fault (2-6% of a step's time on
    the development machine, 2-3% of inference's). Blocks up to 32 MiB now come from the heap, which is trimmed
    only past 1 GiB free: the process keeps its peak memory, and a step reuses what the last one freed. Numbers do
    not change (tensors stay 64-byte aligned: torch's CPU allocator). Elsewhere than glibc (macOS, musl) nothing is
    done.
    Returns whether the setting took."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
