"""What a run will store before it runs: its config, with a run in shares resolved on its first batch."""

from __future__ import annotations

from lossnet.train.balance import run_shares
from lossnet.train.config import TrainConfig
from lossnet.train.distributed import init_distributed, shutdown
from lossnet.train.loop import _Run


def planned_config(config: TrainConfig) -> TrainConfig:
    """The config a run of ``config`` stores (``train --print-config`` shows it); nothing is written.

    A run in shares builds its network and loss and resolves the shares on its first batch, as the run
    will (:func:`lossnet.train.balance.calibrate_run`); its ``resolved_weights`` are then set.
    """
    if run_shares(config) is None:
        return config
    world = init_distributed(config.device)
    try:
        return _Run(config, world, None, False, overwrite=True).config
    finally:
        shutdown(world)
