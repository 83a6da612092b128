"""Build a network from a JSON-compatible spec, so checkpoints can name the network they hold.

A spec is ``{"name": <class name>, "kwargs": {<constructor arguments>}}``. The trainer
writes it into every checkpoint's metadata (``meta["model"]``) and
:func:`build_model` rebuilds the same network from it, with no pickle and no code
from the file: only the classes in :data:`MODELS` can be named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from lossnet.errors import InputError, InputTypeError
from lossnet.models.adain import AdaINNet
from lossnet.models.compact import Compact
from lossnet.models.multi_style_net import MultiStyleNet
from lossnet.models.super_res_net import SuperResNet
from lossnet.models.transformer_net import TransformerNet
from lossnet.models.unet import UNet
from lossnet.validation import check_choice

#: The networks a spec can name.
MODELS: dict[str, type[nn.Module]] = {
    "TransformerNet": TransformerNet,
    "SuperResNet": SuperResNet,
    "UNet": UNet,
    "Compact": Compact,
    "MultiStyleNet": MultiStyleNet,
    "AdaINNet": AdaINNet,
}


def model_spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """A checked spec for :func:`build_model`; tuples become lists, as JSON stores them.

    >>> model_spec("UNet", in_channels=1, depth=2)
    {'name': 'UNet', 'kwargs': {'in_channels': 1, 'depth': 2}}
    """
    check_choice(name, MODELS, "model")
    return {"name": name, "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}}


def build_model(spec: Mapping[str, Any]) -> nn.Module:
    """Build the network a spec names, with fresh weights.

    Args:
        spec: ``{"name": ..., "kwargs": {...}}`` as made by :func:`model_spec` (or read back from JSON).

    Raises:
        InputError: unknown name, or arguments the network does not take.

    >>> build_model(model_spec("TransformerNet", channels=4, num_residual=1)).channels
    4
    """
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise InputTypeError(f"a model spec is {{'name': ..., 'kwargs': {{...}}}}; got {spec!r}")
    name = check_choice(spec["name"], MODELS, "model")
    kwargs = dict(spec.get("kwargs") or {})
    try:
        return MODELS[name](**kwargs)
    except TypeError as err:
        raise InputError(f"cannot build {name} from {kwargs}: {err}") from None
