"""The project's exceptions: small hierarchy, messages meant for people (printed without a traceback)."""


class IredError(Exception):
    """Base of every error ired reports to a user as one line."""


class ConfigError(IredError):
    """A config file, key or value is wrong; raised before any work starts."""


class CheckpointError(IredError):
    """A checkpoint file is missing, unreadable or from an incompatible run."""


class DivergedError(IredError):
    """Training produced NaN/inf; not retried."""

    def __init__(self, step: int, detail: str) -> None:
        super().__init__(f"run diverged at step {step}: {detail}")
        self.step = step
