"""Training image-transformation networks: configs and recipes, the loop, checkpoints, logs.

>>> from lossnet.train import task_config
>>> task_config("superres", steps=100).model
'SuperResNet'

Run one with ``lossnet.train.train(config)`` or ``lossnet train TASK`` on the command line;
:func:`train_step` is one optimisation step of the trainer, for benchmarks and custom loops.
What each task is (recipe, network, paper loss) lives in the task registry, :mod:`lossnet.tasks`.
"""

from lossnet.checkpoint import Checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from lossnet.train.config import TASK_PRESETS, TrainConfig, task_config
from lossnet.train.loop import TrainingInterrupted, TrainResult, resume_config, train
from lossnet.train.step import train_step

__all__ = [
    "TASK_PRESETS",
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "load_checkpoint",
    "resume_config",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "task_config",
    "train",
    "train_step",
]
