"""Recipes in shares for a training run, and the gradient shares in its log.

A run in shares (``--balance shares``, a ``--*-share`` flag) resolves its shares to weights once, on the
first batch: the network's first output against its target (:func:`calibrate_run`). The weights go into
the config (``resolved_weights``), so ``config.json``, the checkpoint and ``run.json`` keep them and a
resumed run uses them as they are, without calibrating again.

At every validation step the run also writes each term's value share and gradient share (the norm of
``d term / d output`` as a fraction of the sum) on that step's batch to ``shares.csv`` and the log
(:func:`measure_run_shares`): a term that moves nothing shows a gradient share near 0. It costs one
forward pass of the network and of the loss and one backward pass of the loss per term, at validation
steps only.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from lossnet.losses.perceptual import PerceptualLoss
from lossnet.losses.presets import PRESETS
from lossnet.losses.shares import merge_shares
from lossnet.runtime import Runtime
from lossnet.terms.registry import FAMILIES
from lossnet.terms.shares import Balance
from lossnet.train.config import TrainConfig, loss_kwargs, loss_preset

log = logging.getLogger("lossnet")

#: The file of the value and gradient shares measured at each validation step.
SHARES_CSV = "shares.csv"


def run_shares(config: TrainConfig) -> dict[str, float] | None:
    """The shares a run still has to resolve (the recipe's, then the ``*_share`` fields), or ``None``.

    ``None`` when the run uses the weights as given, or its shares are already resolved (a resumed run).
    """
    given = {name: v for name in FAMILIES if (v := getattr(config, f"{name}_share", None)) is not None}
    if config.resolved_weights is not None or config.balance == "weights" or (config.balance is None and not given):
        return None
    recipe = None if config.loss == "pixel" else PRESETS[loss_preset(config)].shares
    return merge_shares(recipe, given, loss_kwargs(config))


def _output(model: nn.Module, x: torch.Tensor, runtime: Runtime, *condition: torch.Tensor) -> torch.Tensor:
    """The network's output on ``x`` (and a batch's condition, the style indices of a multi-style run) in
    training mode, leaving its batch-norm statistics as they were."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    with torch.no_grad(), runtime.autocast():
        out = model(x, *condition)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return out.float()


def calibrate_run(
    config: TrainConfig,
    model: nn.Module,
    loss: PerceptualLoss,
    batch: tuple[torch.Tensor, torch.Tensor],
    runtime: Runtime,
    shares: dict[str, float],
) -> tuple[TrainConfig, Balance]:
    """Resolve ``shares`` on the first batch and set ``loss``'s weights; the config with ``resolved_weights``.

    A multi-style batch is measured against the first style image for every item (the shares are a
    property of the loss's families, which the styles share)."""
    x, y, *condition = batch
    balance = loss.calibrate(_output(model, x, runtime, *condition), y, shares)
    balance.where = "first batch"
    return config.replace(resolved_weights=balance.keywords), balance


def measure_run_shares(
    model: nn.Module, loss: PerceptualLoss, batch: tuple[torch.Tensor, torch.Tensor], runtime: Runtime, step: int
) -> dict[str, Any]:
    """``{"step", "value.<term>", "grad.<term>"}``: each term's share of the loss and of its gradient at ``batch``."""
    x, y, *condition = batch
    shares = loss.shares(_output(model, x, runtime, *condition), y)
    row: dict[str, Any] = {"step": step}
    row |= {f"value.{k}": round(v, 6) for k, v in shares["value"].items()}
    row |= {f"grad.{k}": round(v, 6) for k, v in shares["gradient"].items()}
    terms = ", ".join(f"{k} {v:.1%} / {shares['gradient'][k]:.1%}" for k, v in shares["value"].items())
    log.info("step %d, share of the loss / of its gradient: %s", step, terms)
    return row


def log_balance(balance: Balance) -> None:
    """Log the shares asked for and the weights they resolved to."""
    asked = ", ".join(f"{k} {v:.1%}" for k, v in balance.shares.items())
    log.info(
        "shares (%s rule, on the %s): %s; resolved weights %s", balance.rule, balance.where, asked, balance.keywords
    )
