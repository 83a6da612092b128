"""``FeatureExtractor``: named activations of a VGG, AlexNet or SqueezeNet 1.1 from one forward pass."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import torch
from torch import nn

from lossnet.backbones.loaders import load_into
from lossnet.backbones.preprocessing import Preprocess
from lossnet.backbones.small_trunks import SmallTrunk
from lossnet.backbones.vgg import POOLINGS, VGG, LayerInfo, check_arch, check_layers, get_layer, is_vgg
from lossnet.backbones.weights import LoadedWeights, load_weights
from lossnet.errors import InputError, InputTypeError, WeightsError
from lossnet.runtime import PRECISION_CHOICES, Runtime, autocast_dtype
from lossnet.validation import Range, check_choice, check_image, check_input_range


class FeatureExtractor(nn.Module):
    """A frozen trunk (a VGG, AlexNet or SqueezeNet 1.1) that returns the activations of named layers from one pass.

    The network is cut right after the deepest requested layer, its parameters do not
    require gradients, and it stays in eval mode (batch norm uses its running
    statistics) even when a parent module is put in training mode. Preprocessing is
    its first step, so images go in as they are, in ``input_range``.

    Args:
        arch: ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` or their ``"_bn"`` variants,
            ``"alexnet"`` or ``"squeezenet1_1"`` (the LPIPS trunks); see :data:`lossnet.ALL_ARCHS`.
        layers: names such as ``["relu1_2", "relu2_2"]`` (``["relu1", "relu5"]`` for AlexNet,
            ``["fire3"]`` for SqueezeNet); see :func:`lossnet.layer_names`.
        weights: ``"auto"`` (default: ``"imagenet"`` where it can be had, else ``"hed"``, logged; only VGG16
            has that fallback), ``"imagenet"``, ``"hed"`` (VGG16 only), a file path or ``None`` (random);
            see :mod:`lossnet.backbones.weights`.
        input_range: range of the input images: ``(0, 1)``, ``(-1, 1)`` or ``(0, 255)``.
        preprocessing: ``"torch"`` or ``"caffe"``, to override the guess for a weight file.
        compute_dtype: ``None`` (default) runs the network in its parameters' dtype (float32), or
            under the caller's ``torch.autocast``. ``torch.bfloat16`` (or ``torch.float16``) runs it
            under ``torch.autocast`` for that dtype on the input's device, whatever the caller does.
            The names of :data:`lossnet.runtime.PRECISION_CHOICES` work too: ``"fp32"`` is ``None``;
            ``"auto"``, ``"bf16"`` and ``"fp16"`` are resolved on the input's device at each call
            (cached; ``"auto"``: bf16 where that device runs it natively, see :mod:`lossnet.runtime`), and a
            :class:`~lossnet.runtime.Runtime` gives its dtype. In half precision the convolutions
            compute in half precision and the activations come back in it. Losses built on this
            compare them in float32. On CPU the activations are channels-last in every precision,
            which the oneDNN kernels prefer (see :data:`CHANNELS_LAST_ON_CPU`).
        pooling: ``"max"`` (default) keeps the network's max-pools. ``"l2"`` (VGGs only) puts DISTS'
            :class:`~lossnet.backbones.pooling.L2Pool2d` in place of each one (``VGG(arch, pooling="l2")``);
            the weights are the same tensors, so ImageNet files load unchanged. L2 pooling maps ``H`` to
            ``ceil(H / 2)``, so every map stays non-empty; :attr:`min_size` keeps the max-pool rule
            (the stride), which is conservative there. For AlexNet/SqueezeNet it raises an ``InputError``.

    Shape:
        input ``(B, C, H, W)`` with C in {1, 3} (1 is repeated to RGB), values in ``input_range``;
        output ``{name: (B, C_l, H_l, W_l)}``: about ``H / s_l`` with s_l the layer's total stride
        (exactly ``floor`` for a VGG with max pooling, ``ceil`` with L2 pooling; AlexNet and SqueezeNet's
        unpadded convolutions and 3x3 pools trim a little more, see :attr:`min_size`).

    Example:
        >>> fx = FeatureExtractor("vgg11", ["relu1_1", "relu2_1"], weights=None)
        >>> {k: tuple(v.shape) for k, v in fx(torch.rand(2, 3, 32, 32)).items()}
        {'relu1_1': (2, 64, 32, 32), 'relu2_1': (2, 128, 16, 16)}
        >>> fast = FeatureExtractor("vgg11", ["relu2_1"], weights=None, compute_dtype=torch.bfloat16)
        >>> fast(torch.rand(1, 3, 32, 32))["relu2_1"].dtype
        torch.bfloat16
        >>> alex = FeatureExtractor("alexnet", ["relu2", "relu5"], weights=None)
        >>> {k: tuple(v.shape) for k, v in alex(torch.rand(1, 3, 64, 64)).items()}
        {'relu2': (1, 192, 7, 7), 'relu5': (1, 256, 3, 3)}
    """

    def __init__(
        self,
        arch: str,
        layers: Iterable[str],
        weights: str | os.PathLike[str] | None | LoadedWeights = "auto",
        input_range: Range = (0.0, 1.0),
        preprocessing: str | None = None,
        compute_dtype: torch.dtype | str | Runtime | None = None,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.compute_dtype = check_compute_dtype(compute_dtype)
        self.arch = check_arch(arch)
        self.pooling = check_pooling(arch, pooling)
        self.layers = check_layers(arch, layers)
        self.input_range = check_input_range(input_range)
        if isinstance(weights, LoadedWeights):
            if preprocessing is not None:
                raise WeightsError(
                    "preprocessing= applies while loading a weight file; these weights are already loaded "
                    "with their preprocessing. Pass it to load_weights(..., preprocessing=...) instead."
                )
            loaded = weights
        else:
            loaded = load_weights(arch, weights, preprocessing)
        self.weights_id = loaded.id
        self.weights_description = loaded.description
        net = build_trunk(arch, self.pooling)
        if loaded.state_dict is not None:
            load_into(net, loaded.state_dict, loaded.description)
        self._infos: dict[int, LayerInfo] = {get_layer(arch, n).index: get_layer(arch, n) for n in self.layers}
        deepest = max(self._infos)
        self.preprocess = Preprocess(loaded.preprocessing, self.input_range)
        self.features = net.features[: deepest + 1]
        for i, module in enumerate(self.features):
            # A ReLU may work in place unless the activation before it is one we return.
            if isinstance(module, nn.ReLU) and i - 1 not in self._infos:
                module.inplace = True
        self.requires_grad_(False)
        self.eval()

    @property
    def min_size(self) -> int:
        """The smallest input height and width for which every requested layer is non-empty.

        With ``pooling="l2"`` this is still the max-pool rule (the stride): a safe bound, as L2 pooling
        never empties a map.
        """
        return max(info.min_size for info in self._infos.values())

    def train(self, mode: bool = True) -> FeatureExtractor:
        """The loss network stays in eval mode whatever ``mode`` is asked."""
        return super().train(False)

    def check(self, x: object, name: str = "input") -> torch.Tensor:
        """Validate an image batch for this extractor (shape, range, size, device)."""
        x = check_image(x, name, self.input_range)
        small = min(x.shape[-2:])
        if small < self.min_size:
            layer = max(self._infos.values(), key=lambda i: i.min_size)
            raise InputError(
                f"{name} is {tuple(x.shape[-2:])} pixels but layer {layer.name!r} of {self.arch} needs at least "
                f"{layer.min_size}x{layer.min_size}; upsample the input or choose shallower layers"
            )
        device = self.preprocess.weight.device
        if x.device != device:
            raise InputError(
                f"{name} is on {x.device} but the loss network is on {device}; move one of them, "
                f"e.g. loss.to({str(x.device)!r}) or x.to({str(device)!r})"
            )
        return x

    def forward(
        self, x: torch.Tensor, validate: bool = True, layers: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Return ``{layer: activation}`` for the requested layers.

        Args:
            x: images ``(B, C, H, W)`` in ``input_range``. A dtype other than the
                network's is cast to it (under autocast, autocast decides).
            validate: check the input first; internal callers that already did pass ``False``.
            layers: a subset of :attr:`layers` to return; the pass then stops after the deepest
                of them (e.g. a style loss with cached Grams needs only the feature layer of its
                target). ``None`` (default): all of them.
        """
        wanted = self._infos
        if layers is not None:
            names = set(layers)
            unknown = names - set(self.layers)
            if unknown or not names:
                raise InputError(f"layers must be a non-empty subset of {self.layers}; got {sorted(names)}")
            wanted = {i: info for i, info in self._infos.items() if info.name in names}
        stop = max(wanted)
        if validate:
            x = self.check(x)
        device_type = x.device.type
        compute = self.compute_dtype
        if isinstance(compute, str):  # a name: resolved once per device (cached; a constant under torch.compile)
            compute = autocast_dtype(compute, x.device)
        own = compute is not None
        with torch.autocast(device_type, dtype=compute) if own else contextlib.nullcontext():
            autocast = torch.is_autocast_enabled(device_type)
            dtype = self.preprocess.weight.dtype
            if x.dtype != dtype and not autocast:
                x = x.to(dtype)
            x = self.preprocess(x)
            if device_type == "cpu" and CHANNELS_LAST_ON_CPU:
                x = x.contiguous(memory_format=torch.channels_last)
            out: dict[str, torch.Tensor] = {}
            for i, module in enumerate(self.features[: stop + 1]):
                x = module(x)
                if i in wanted:
                    out[wanted[i].name] = x
        return out

    def extra_repr(self) -> str:
        half = f", compute_dtype={self.compute_dtype!r}" if self.compute_dtype is not None else ""
        pool = f", pooling={self.pooling!r}" if self.pooling != "max" else ""
        return f"arch={self.arch!r}, layers={self.layers}, weights={self.weights_id!r}{pool}{half}"


def check_pooling(arch: str, pooling: object) -> str:
    """Validate ``pooling`` for ``arch``: ``"max"`` for any trunk, ``"l2"`` for a VGG only.

    >>> check_pooling("vgg16", "l2")
    'l2'
    """
    name = check_choice(pooling, POOLINGS, "pooling")
    if name == "l2" and not is_vgg(arch):
        raise InputError(
            f"pooling='l2' replaces a VGG's 2x2 max-pools (as DISTS does); {arch} is not a VGG, its 3x3 "
            "overlapping pools have no L2 counterpart here. Use pooling='max' (the default) or a VGG such as 'vgg16'."
        )
    return name


def build_trunk(arch: str, pooling: str = "max") -> nn.Module:
    """A randomly initialised trunk for ``arch`` with torchvision's ``state_dict`` keys: a VGG or a SmallTrunk.

    >>> type(build_trunk("squeezenet1_1")).__name__, type(build_trunk("vgg11", "l2").features[2]).__name__
    ('SmallTrunk', 'L2Pool2d')
    """
    if is_vgg(arch):
        return VGG(arch, pooling=check_pooling(arch, pooling))
    check_pooling(arch, pooling)
    return SmallTrunk(arch)


#: On CPU the network runs on channels-last activations (the weights stay as they are: converting
#: them too was slower). On the 2-core AVX-512-bf16 CPU of BENCHMARKS.md, for the johnson2016_style
#: layers at 256 px: bf16, batch 2, a step took 3.4 s instead of 4.1 s (median of 5 interleaved
#: runs; max-pooling is where NCHW loses most); fp32, batch 4, with the style Grams cached, 1.20x and
#: 1.27x faster (7 and 5 interleaved rounds, quiet machine), 1.12x at 128 px; the same CPU restricted
#: to AVX2 (oneDNN, MKL and ATen) 1.03x (``benchmarks/fp32_tuning.py``). Read at call time.
CHANNELS_LAST_ON_CPU = True

COMPUTE_DTYPES = (torch.bfloat16, torch.float16)


def check_compute_dtype(dtype: object) -> torch.dtype | str | None:
    """Normalise a ``compute_dtype``: ``None``/``torch.float32``/``"fp32"`` mean ``None``.

    ``torch.bfloat16`` and ``torch.float16`` are returned as they are; the names ``"auto"``,
    ``"bf16"`` and ``"fp16"`` stay names (resolved per device at call time, by
    :func:`lossnet.runtime.resolve`); a :class:`~lossnet.runtime.Runtime` gives its dtype.

    >>> check_compute_dtype(torch.bfloat16)
    torch.bfloat16
    >>> check_compute_dtype("fp32") is None, check_compute_dtype("auto")
    (True, 'auto')
    """
    if isinstance(dtype, Runtime):
        return dtype.dtype
    if isinstance(dtype, str):
        name = check_choice(dtype, PRECISION_CHOICES, "compute_dtype")
        return None if name == "fp32" else name
    if dtype is None or dtype == torch.float32:
        return None
    if dtype in COMPUTE_DTYPES:
        return dtype  # type: ignore[return-value]
    if isinstance(dtype, torch.dtype):
        raise InputError(
            f"compute_dtype must be None (float32), torch.bfloat16 or torch.float16; got {dtype}. "
            "To run the whole network in float64, convert the module with .double() instead."
        )
    raise InputTypeError(
        f"compute_dtype must be a torch.dtype (torch.bfloat16 or torch.float16), one of {list(PRECISION_CHOICES)} "
        f"or None; got {dtype!r}"
    )
