"""One training step, public, so that the trainer, benchmarks and a user's own loop run the same step.

:func:`train_step` runs the network and the loss under the runtime's autocast, refuses a
step whose output, loss or gradient is not finite (:class:`~lossnet.errors.TrainingDivergedError`,
naming the term or the parameter, before anything is applied), and applies the gradients (through the
GradScaler for fp16, which skips such steps itself).

>>> from lossnet.losses import PerceptualLoss
>>> from lossnet.models import UNet
>>> from lossnet.runtime import resolve
>>> net = UNet(depth=1, base_channels=4)
>>> loss = PerceptualLoss(feature_layers={}, pixel_weight=1.0, weights=None)
>>> opt = torch.optim.Adam(net.parameters(), lr=1e-3)
>>> x = torch.rand(2, 3, 16, 16)
>>> sorted(train_step(net, loss, opt, (x, x), resolve("fp32", "cpu")))
['pixel', 'total']
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from lossnet.errors import TrainingDivergedError
from lossnet.runtime import Runtime
from lossnet.train.config import TrainConfig

#: What a diverged run should try.
_FIX = "Lower --lr, train in --precision fp32, or check the data."


def make_optimizer(
    config: TrainConfig, params: Iterable[nn.Parameter], style_params: Iterable[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The config's optimizer (``adam`` or ``adamw``) with its learning rate and weight decay.

    ``style_params`` (a multi-style network's ``style_parameters()``, a subset of ``params``) learn at
    ``config.style_lr_scale`` times the rate, in a second parameter group that records its ``lr_scale``; with a
    scale of 1, or none of them, there is one group.
    """
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    params, style = list(params), list(style_params)
    if config.style_lr_scale == 1 or not style:
        return cls(params, lr=config.lr, weight_decay=config.weight_decay)
    ids = {id(p) for p in style}
    shared = [p for p in params if id(p) not in ids]
    scale = float(config.style_lr_scale)
    groups = [{"params": shared, "lr_scale": 1.0}, {"params": style, "lr": config.lr * scale, "lr_scale": scale}]
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay)


def train_step(
    model: nn.Module,
    loss: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor],
    runtime: Runtime,
    scaler: torch.amp.GradScaler | None = None,
    *,
    step: int = 0,
) -> dict[str, torch.Tensor]:
    """One optimisation step of ``model`` on ``batch`` with ``loss``; returns the loss terms, detached.

    Args:
        model: the network (or its DistributedDataParallel wrapper); put in training mode.
        loss: a loss with ``terms(prediction, target) -> {name: value, ..., 'total': value}``,
            such as :class:`~lossnet.losses.PerceptualLoss`.
        optimizer: over ``model``'s parameters.
        batch: ``(input, target)``, ``(B, C, H, W)`` on the model's device, in [0, 1]; a conditioned task's
            batch adds each item's condition, ``(input, target, index)`` with int64 ``index`` ``(B,)`` (a
            multi-style network's style), passed to the model and to the loss as its ``target_index``.
        runtime: the device and precision (:func:`lossnet.runtime.resolve`); the forward and
            the loss run under its autocast.
        scaler: the GradScaler for fp16 (``None``: plain backward and step).
        step: the step's number, counted from 1, for the error message.

    Returns:
        ``{term: value}`` with ``total``, each a detached scalar tensor.

    Raises:
        TrainingDivergedError: the network's output or a loss term is NaN or infinite; the
            step is not applied (the weights and the optimizer are left as they were).
    """
    x, y, *condition = batch
    model.train()
    with runtime.autocast():
        out = model(x, *condition)
        if not bool(torch.isfinite(out).all()):
            raise TrainingDivergedError(
                f"the network's output became NaN or infinite at step {step}, before the loss: its weights have "
                f"diverged; the step was not applied. {_FIX}"
            )
        terms = loss.terms(out.float() if out.dtype != torch.float32 else out, y, *condition)
    values = torch.stack([t.detach().float() for t in terms.values()])
    if not bool(torch.isfinite(values).all()):
        bad = [(k, float(v)) for k, v in zip(terms, values, strict=True) if not math.isfinite(float(v))]
        raise TrainingDivergedError(
            f"loss term {bad[0][0]!r} became {bad[0][1]} at step {step} "
            f"({', '.join(f'{k} = {v}' for k, v in bad)}); the step was not applied and the last checkpoint is "
            f"intact. {_FIX}"
        )
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(terms["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        terms["total"].backward()
        _refuse_non_finite_gradients(model, step)
        optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


def _refuse_non_finite_gradients(model: nn.Module, step: int) -> None:
    """Raise, before the optimizer applies anything, when a finite loss gave a NaN or infinite gradient.

    Adam would write it into the weights, and the run would only fail a step later, at the output.
    """
    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    if not named or bool(torch.isfinite(torch.nn.utils.get_total_norm([g for _, g in named])).all()):
        return
    name, grad = next((n, g) for n, g in named if not bool(torch.isfinite(g).all()))
    kind = "NaN" if bool(torch.isnan(grad).any()) else "infinite"
    raise TrainingDivergedError(
        f"the gradient of {name} became {kind} at step {step} while the loss was finite; the step was not applied. "
        "An instance-norm network's gradient explodes on a crop that is almost one colour (lossnet redraws those "
        f"for its own networks: lossnet.data.folder.FLAT_CROP_STD). {_FIX}"
    )


def check_weights(model: nn.Module, step: int) -> None:
    """Refuse a network whose weights (or batch-norm statistics) are no longer finite, naming the first.

    Raises:
        TrainingDivergedError: a parameter or floating-point buffer holds NaN or infinity.
    """
    for name, param in [*model.named_parameters(), *model.named_buffers()]:
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise TrainingDivergedError(
                f"the network's weights became NaN or infinite at step {step} (first: {name}); nothing was saved "
                f"for this step and the last checkpoint is intact. {_FIX}"
            )
