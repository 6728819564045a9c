"""Local GPUs, one job per device: a slot allocator shared by every process of this machine's user.

submitit's local executor gives every job the first ``gpus_per_node`` devices, so K local trainings would all run on
device 0. Instead, a local job that asks for a GPU (the resource ``gpu``) is submitted with the machine's device
list in its environment (:data:`SLOTS_ENV`), and the job itself, before torch is imported, takes the first free
device: an exclusive ``flock`` on ``<slot folder>/gpu<N>.lock``, held for the job's life and dropped by the kernel
however the job ends. It then sees only that device (``CUDA_VISIBLE_DEVICES``). Snakemake's ``--resources gpu=K``
bounds how many such jobs a head starts; a job that finds every device taken (another head's) waits for one.

Slurm jobs never use this: Slurm gives each job its own devices.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ired.core.errors import ConfigError

#: The job's environment variable naming the slot folder and the devices to share out (JSON).
SLOTS_ENV = "IRED_GPU_SLOTS"
WAIT_S = 2.0  # between two looks for a free device


def slot_folder() -> Path:
    """One folder per user and machine: every head of this user on this machine shares the same devices."""
    return Path(tempfile.gettempdir()) / f"ired-gpu-slots-{os.getuid()}"


def machine_devices(configured: list[int] | None) -> list[str]:
    """The devices local jobs share out: ``local_gpus`` of the dispatch settings, else the head's own
    ``CUDA_VISIBLE_DEVICES`` (when set and not empty), else every ``/dev/nvidiaN``."""
    if configured is not None:
        return [str(d) for d in configured]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()]
    found = sorted(int(m.group(1)) for p in Path("/dev").glob("nvidia*") if (m := re.fullmatch(r"nvidia(\d+)", p.name)))
    return [str(d) for d in found]


def job_environment(gpus: int, configured: list[int] | None) -> dict[str, str]:
    """What a local job that asks for ``gpus`` devices needs in its environment; {} for a CPU job. A request this
    machine cannot meet is a one-line error before anything is submitted."""
    if gpus <= 0:
        return {}
    devices = machine_devices(configured)
    if len(devices) < gpus:
        raise ConfigError(
            f"the job asks for gpu={gpus} but this machine has {len(devices)} GPU(s) to share out "
            f"({devices or 'no /dev/nvidiaN, CUDA_VISIBLE_DEVICES unset'}): set local_gpus in the dispatch file, or "
            "ask for none (--set-resources train:gpu=0, and a config with device: cpu)")
    return {SLOTS_ENV: json.dumps({"folder": str(slot_folder()), "devices": devices, "count": gpus})}


def _try_take(folder: Path, device: str) -> int | None:
    path = folder / f"gpu{device}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode())
    return fd


def take(folder: Path, devices: list[str], count: int, wait_s: float = WAIT_S) -> tuple[list[str], list[int]]:
    """Take ``count`` free devices (blocking until there are); returns them and the lock descriptors."""
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        taken: list[tuple[str, int]] = []
        for device in devices:
            fd = _try_take(folder, device)
            if fd is not None:
                taken.append((device, fd))
                if len(taken) == count:
                    return [d for d, _ in taken], [fd for _, fd in taken]
        for _, fd in taken:  # not enough: give them back, wait, try again
            os.close(fd)
        time.sleep(wait_s)


@contextmanager
def claimed_device() -> Iterator[list[str]]:
    """In a job: take the devices its environment offers (:data:`SLOTS_ENV`) and make them the only visible ones
    (``CUDA_VISIBLE_DEVICES``) while the block runs; nothing for a job without the variable."""
    spec = os.environ.get(SLOTS_ENV)
    if not spec:
        yield []
        return
    offer = json.loads(spec)
    devices, fds = take(Path(offer["folder"]), list(offer["devices"]), int(offer["count"]))
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    print(f"ired dispatch: local GPU slot: device(s) {','.join(devices)}", flush=True)
    try:
        yield devices
    finally:
        for fd in fds:
            os.close(fd)
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
