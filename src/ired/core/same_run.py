"""Same run? A checkpoint's config against the config resuming it (the trainer and the dispatcher head).

:func:`config_differences` names the dotted keys whose values differ, ignoring :data:`RESUMABLE_DIFFERENCES`.
"""

from __future__ import annotations

from typing import Any

RESUMABLE_DIFFERENCES = {
    "train.micro_batch", "train.threads", "negatives.steps", "negatives.buffer_size", "device",
    "inference.batch_size", "faults",
}
"""Keys that may differ between a checkpoint and the config resuming it: resource knobs the dispatcher's
out-of-memory fallbacks change, fault injection, and devices/threads."""


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts, ignoring :data:`RESUMABLE_DIFFERENCES`."""
    fa, fb = _flatten(a), _flatten(b)
    diffs = []
    for key in sorted(set(fa) | set(fb)):
        if key in RESUMABLE_DIFFERENCES or key.split(".")[0] in RESUMABLE_DIFFERENCES:
            continue
        if fa.get(key) != fb.get(key):
            diffs.append(key)
    return diffs
