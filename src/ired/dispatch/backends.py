"""Which backend runs a dispatch: the class of the settings' ``cluster`` (:mod:`ired.dispatch.executor`), or
on Slurm with ``array`` set the head's broker (:mod:`ired.dispatch.broker`). Above both, so that neither
imports the other's user."""

from __future__ import annotations

from pathlib import Path

from ired.dispatch.broker import ArrayBackend, broker_folder
from ired.dispatch.executor import Backend, LocalBackend, SlurmBackend
from ired.dispatch.settings import DispatchSettings

#: The backend class of each ``cluster`` value of the settings.
BACKENDS: dict[str, type[Backend]] = {b.cluster: b for b in (SlurmBackend, LocalBackend)}


def backend(settings: DispatchSettings, run_dir: Path | None = None) -> Backend:
    """The backend the settings name (``cluster``); on Slurm with ``array`` set and a run folder, the head's
    broker (:class:`ired.dispatch.broker.ArrayBackend`)."""
    if settings.cluster == "slurm" and settings.array is not None and run_dir is not None:
        return ArrayBackend(settings, broker_folder(run_dir))
    return BACKENDS[settings.cluster](settings)


def backend_for(cluster: str) -> Backend:
    """The backend of a recorded job (``job.json``'s ``cluster``), with default settings: enough to ask about,
    or cancel, a job."""
    return backend(DispatchSettings.model_validate({"cluster": cluster}))
