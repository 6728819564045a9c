"""The torch device a run config names (``device``: auto, cpu, cuda), checked against the node it runs on.

Shared by training and evaluation; it belongs to neither.
"""

from __future__ import annotations

import torch

from ired.core.errors import ConfigError
from ired.core.host import node_name


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; ``cuda`` on a node without CUDA is a one-line ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"key 'device': value 'cuda' not allowed on node {node_name()}: it has no CUDA device "
            "(allowed there: auto, cpu)"
        )
    return torch.device(name)
