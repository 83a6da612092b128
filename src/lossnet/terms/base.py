"""The :class:`Term` interface and the one normaliser of per-layer weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from lossnet.backbones.vgg import check_layers
from lossnet.validation import check_weight

#: Any callable that maps images ``(B, C, H, W)`` to ``{layer: features (B, C_l, H_l, W_l)}``.
Backbone = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]
#: Features by layer name, ``{layer: (B, C_l, H_l, W_l)}``.
Features = Mapping[str, torch.Tensor]
#: What a term keeps of a target: named tensors (kept as buffers when the target is fixed).
Statistics = dict[str, torch.Tensor]
#: Per-layer weights as users give them: ``{"relu2_2": 0.5}``, ``["relu2_2"]`` (weight 1), one name, or ``None``.
LayerWeights = Mapping[str, float] | Iterable[str] | None


def layer_weights(layers: LayerWeights, what: str = "layer", arch: str | None = None) -> dict[str, float]:
    """Normalise per-layer weights into ``{layer: weight}`` with checked (finite, >= 0) weights.

    Args:
        layers: ``{layer: weight}``, names (weight 1 each), a single name, or ``None`` (no layer).
        what: what the weights are for, for error messages (``"feature"``, ``"style"``).
        arch: when given, the names are checked against that network's layers and put in forward
            order; otherwise they are kept as given (any backbone's names).

    Example:
        >>> layer_weights(["relu2_2", "relu1_2"], arch="vgg16")
        {'relu1_2': 1.0, 'relu2_2': 1.0}
    """
    if layers is None:
        return {}
    given = (
        {str(k): v for k, v in layers.items()}
        if isinstance(layers, Mapping)
        else {str(name): 1.0 for name in ([layers] if isinstance(layers, str) else layers)}
    )
    ordered = check_layers(arch, given) if arch is not None and given else list(given)
    return {name: check_weight(given[name], f"{what} weight of {name!r}") for name in ordered}


class Term(nn.Module):
    """One weighted comparison of a prediction with a target (see :mod:`lossnet.terms`).

    Subclasses set :attr:`key`, :attr:`weight`, :attr:`layers` and :attr:`needs_target`, and
    implement :meth:`per_sample`; they override :meth:`target_statistics` when they keep something
    other than the target's features at :attr:`layers` (or its image, when :attr:`layers` is
    empty), and :meth:`spatial` when the term has a map.

    Attributes:
        key: the term's name in the terms dict (``"pixel"``, ``"feature.relu2_2"``, ``"style.relu1_1"``, ``"tv"``).
        weight: the term's weight, applied by the engine after the reduction.
        layers: the extractor layers the term reads, of the prediction and of the target; ``()`` for
            terms in image space.
        needs_target: ``False`` for a regulariser of the prediction alone (TV).
    """

    key: str
    weight: float
    layers: tuple[str, ...] = ()
    needs_target: bool = True

    def __init__(self) -> None:
        super().__init__()
        self._fixed_keys: tuple[str, ...] = ()
        self._bank_size = 0

    # -- what the term keeps of a target ---------------------------------------------------------
    def target_statistics(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> Statistics:
        """What the term compares of a target: by default its features at :attr:`layers` (or the image).

        Called under ``no_grad`` for the target of each call (unless the engine is told otherwise)
        and once for a fixed target, whose statistics are then kept as buffers.
        """
        if not self.layers:
            return {"image": image}
        return {name: features[name] for name in self.layers}

    def fix(self, statistics: Statistics | Sequence[Statistics]) -> None:
        """Keep a fixed target's statistics as non-persistent buffers (they follow ``.to()``).

        A sequence keeps a bank of targets (one per style of a multi-style network): target 0 is
        :attr:`fixed`, and a call's ``target_index`` picks each item's (see :attr:`fixed_bank`).
        """
        bank = [statistics] if isinstance(statistics, Mapping) else list(statistics)
        self.unfix()
        for k, stats in enumerate(bank):
            for name, value in stats.items():
                self.register_buffer(_buffer(k, name), value.detach().clone(), persistent=False)
        self._fixed_keys, self._bank_size = tuple(bank[0]), len(bank)

    def unfix(self) -> None:
        """Forget the fixed target(s); the target is then taken from each call."""
        for k in range(self._bank_size):
            for name in self._fixed_keys:
                self._buffers.pop(_buffer(k, name), None)
        self._fixed_keys, self._bank_size = (), 0

    @property
    def fixed(self) -> Statistics | None:
        """The fixed target's statistics (the first of a bank), or ``None`` when the target comes with each call."""
        if not self._fixed_keys:
            return None
        return {name: getattr(self, _buffer(0, name)) for name in self._fixed_keys}

    @property
    def fixed_bank(self) -> list[Statistics] | None:
        """Every fixed target's statistics, in the order fixed, or ``None`` when there is none."""
        if not self._fixed_keys:
            return None
        return [{name: getattr(self, _buffer(k, name)) for name in self._fixed_keys} for k in range(self._bank_size)]

    # -- the comparison --------------------------------------------------------------------------
    def per_sample(
        self, image: torch.Tensor, features: Mapping[str, torch.Tensor], target: Statistics | None
    ) -> torch.Tensor:
        """The unweighted term of each sample, ``(B,)``.

        Args:
            image: the prediction ``(B, C, H, W)``.
            features: the prediction's features, at least :attr:`layers`.
            target: the target's statistics (from :meth:`target_statistics`, or fixed), or ``None``
                for a term that does not need a target.
        """
        raise NotImplementedError

    def spatial(
        self, image: torch.Tensor, features: Mapping[str, torch.Tensor], target: Statistics | None
    ) -> torch.Tensor:
        """The term as a map ``(B, 1, h, w)`` whose spatial mean is :meth:`per_sample`, where it has one."""
        raise NotImplementedError(f"the {self.key} term has no spatial map")

    def extra_repr(self) -> str:
        fixed = "" if not self._fixed_keys else ", fixed target" if self._bank_size == 1 else f", {self._bank_size} fixed targets"
        return f"key={self.key!r}, weight={self.weight}{fixed}"


def _buffer(k: int, name: str) -> str:
    """The buffer name of target ``k``'s statistic ``name`` (target 0 keeps the one-target name)."""
    return f"fixed_{name}" if k == 0 else f"fixed{k}_{name}"
