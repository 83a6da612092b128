"""Training image-transformation networks: checkpoints (the loop and configs follow)."""

from lossnet.train.checkpoint import Checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state

__all__ = ["Checkpoint", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]
