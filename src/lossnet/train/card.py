"""What a run's checkpoints say about its network: the metadata and model card of :mod:`lossnet.checkpoint`.

The trainer knows three things the config does not: the network's declared size rule, the
weight each loss term resolved to, and the last validation scores. :func:`run_meta` hands them,
with the rest, to :func:`lossnet.checkpoint.model_meta`, which decides the checkpoint's contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lossnet.checkpoint import model_meta
from lossnet.inference.tiling import size_rule
from lossnet.losses.perceptual import PerceptualLoss
from lossnet.tasks import TASKS
from lossnet.train.config import TrainConfig, loss_preset


def run_meta(
    spec: Mapping[str, Any],
    config: TrainConfig,
    step: int,
    model: nn.Module,
    loss: PerceptualLoss,
    validation: Mapping[str, float] | None,
    styles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The metadata of a run's checkpoint at ``step``, with its model card.

    Args:
        spec: the network's spec (:func:`lossnet.models.model_spec`).
        config: the run's config.
        step: the training step the weights come from.
        model: the network (its declared ``scale``, ``in_channels`` and size rule go into the card).
        loss: the run's loss (its terms' resolved weights and its trunk go into the card).
        validation: the last validation scores, or ``None`` before the first validation.
        styles: a multi-style network's style images, by index (``None`` otherwise).

    Example:
        >>> from lossnet.models import build_model, model_spec
        >>> from lossnet.train.config import task_config
        >>> spec = model_spec("UNet", depth=2, base_channels=4)
        >>> loss = PerceptualLoss(weights=None, pixel_weight=1.0)
        >>> card = run_meta(spec, task_config("restore", loss="pixel"), 3, build_model(spec), loss, {"psnr": 20.0})["card"]
        >>> card["network"]["size_multiple"], card["loss"], card["trunk"], card["data"]
        (4, {'recipe': 'pixel', 'weights': {'pixel': 1.0}}, {'arch': None, 'weights': None}, 'embedded default')
    """
    preset, task = loss_preset(config), TASKS[config.task]
    recipe = config.loss if preset in (None, config.loss) else f"{config.loss} ({preset})"
    multiple, min_size = size_rule(model)
    network = {
        "scale": int(getattr(model, "scale", 1)),
        "in_channels": int(getattr(model, "in_channels", 3)),
        "size_multiple": multiple,
        "min_size": min_size,
    }
    return model_meta(
        spec,
        task=config.task,
        scale=task.scale(config.task_options) if task.upscales else None,
        step=step,
        config=config.to_dict(),
        loss_weights=loss.extractor.weights_id if loss.extractor else None,
        network=network,
        loss={
            "recipe": recipe,
            "weights": {term.key: float(term.weight) for term in loss.engine},
            "arch": loss.arch if loss.extractor else None,
        },
        validation=validation,
        styles=styles,
    )
