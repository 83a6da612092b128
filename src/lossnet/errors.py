"""The exceptions lossnet raises.

Every error is a subclass of a built-in (``ValueError``, ``TypeError``,
``FileNotFoundError``), so ``except ValueError`` keeps working, and of
:class:`LossnetError`, so one ``except`` catches everything lossnet raises.
"""

from __future__ import annotations


class LossnetError(Exception):
    """Base class of every lossnet error."""


class InputError(LossnetError, ValueError):
    """A tensor or option has the right type but a wrong value, shape or range."""


class InputTypeError(LossnetError, TypeError):
    """An argument has the wrong type (not a tensor, an integer image, ...)."""


class WeightsError(LossnetError, ValueError):
    """A weight file could not be read, is unsafe, or does not fit the architecture."""


class WeightsUnavailableError(WeightsError, FileNotFoundError):
    """The requested weights are neither on disk nor downloadable."""


class DataUnavailableError(LossnetError, FileNotFoundError):
    """Data that lossnet looked for (the default images, say) is not installed."""


class OfflineSetupError(LossnetError, RuntimeError):
    """Installing the offline packages failed, or a file lossnet reads from them is still missing."""


class CheckpointError(LossnetError, ValueError):
    """A checkpoint file is truncated, corrupt, or not a lossnet checkpoint."""


class RunFolderInUseError(InputError):
    """Another training run is writing into the run folder (``--out-dir``) and holds its lock.

    Attributes:
        pid: that run's process id; ``host``: the machine it runs on (both ``None`` when its
            lock file could not be read).
    """

    def __init__(self, message: str, pid: int | None = None, host: str | None = None) -> None:
        super().__init__(message)
        self.pid, self.host = pid, host

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str | None]]:  # pickled to the other torchrun ranks
        return type(self), (str(self), self.pid, self.host)


class TrainingDivergedError(LossnetError, RuntimeError):
    """A loss term became NaN or infinite during training; the run stopped before using it."""


class LpipsUnavailableError(WeightsUnavailableError):
    """LPIPS cannot be computed here: its ImageNet VGG16 (or its calibration file) cannot be had."""


class DistsUnavailableError(WeightsUnavailableError):
    """DISTS cannot be computed here: its ImageNet VGG16 (or its alpha/beta file) cannot be had."""


class ExportError(LossnetError, ValueError):
    """A network cannot be exported, or its exported file would not compute what the network computes."""


class MissingExtraError(LossnetError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the ``pip install`` line."""
