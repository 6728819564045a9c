"""The machine this process runs on, named as the cluster names it (no torch: the dispatcher head uses it too)."""

from __future__ import annotations

import os
import socket


def node_name() -> str:
    """The Slurm node this runs on (``SLURMD_NODENAME``: several slurmd "nodes" may share one host), else the short
    host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
