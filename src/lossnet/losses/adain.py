"""The loss that trains an AdaIN decoder (Huang & Belongie, ICCV 2017, eq. 11-12).

``L = w_c * mse(f(g(t)), t) + sum_l w_l * MS_l(g(t), s)``, where ``t = AdaIN(f(c), f(s))`` is the
AdaIN output at the encoder's layer, ``g(t)`` the decoded image (the prediction), ``f`` the frozen
encoder and ``MS_l`` the mean/std statistics term of :mod:`lossnet.terms.mean_std` at ``relu1_1`` ..
``relu4_1``. The content term's target is ``t``, not the content image's features: the decoder must
invert AdaIN's output, which only an AdaIN network has, so this loss takes the content and the style
images and computes ``t`` itself.

The terms are the table's families (``feature.<layer>``, ``mean_std.<layer>``), so the trainer's
logs, validation and model card name them as for any loss; the weights are the ``adain_style``
preset's unless overridden. As in the paper's released code, both terms are means (mean squared
error; the statistics' squared distances averaged over channels), where eq. 11-12 write L2 norms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from lossnet.backbones.seeded import shared_extractor
from lossnet.backbones.vgg import check_layers
from lossnet.errors import InputError
from lossnet.functional.adain import ADAIN_EPS, adain, split_content_style
from lossnet.functional.reduction import reduce
from lossnet.terms.base import layer_weights
from lossnet.terms.kinds import FeatureTerm
from lossnet.terms.mean_std import MeanStdTerm
from lossnet.terms.shares import Measurement, family_shares
from lossnet.validation import check_weight

#: The paper's style layers, and its style weight (10, content 1) as in its released code.
ADAIN_STYLE_LAYERS: dict[str, float] = {f"relu{i}_1": 10.0 for i in range(1, 5)}


class AdaINLoss(nn.Module):
    """Content loss on the AdaIN target and mean/std style loss, on the AdaIN network's own encoder.

    Args:
        arch, weights: the encoder's trunk and its weights: the network's own (``AdaINNet.arch`` and
            ``.weights``), so that ``t`` is what the network decodes (a random trunk, ``None``, is drawn
            as the network's: :func:`~lossnet.backbones.seeded.shared_extractor`).
        layer: the encoder's layer, where AdaIN acts and the content term compares (``'relu4_1'``).
        content_weight: the weight of ``feature.<layer>`` (mean squared error to ``t``).
        mean_std_layers: ``{layer: weight}`` of the statistics terms (the paper's: relu1_1..relu4_1, 10 each).
        eps: AdaIN's and the statistics' variance epsilon.

    Shape:
        ``terms(prediction, target)``: the prediction ``(B, 3, H, W)`` in [0, 1] (the decoded image);
        the target ``(B, 6, H, W)``: the content and the style images stacked on the channels, content
        first (:func:`~lossnet.functional.adain.split_content_style`), as ``style_any``'s pairs are.

    Example:
        >>> loss = AdaINLoss("vgg11", None, "relu2_1", mean_std_layers={"relu1_1": 10.0, "relu2_1": 10.0})
        >>> terms = loss.terms(torch.rand(2, 3, 16, 16), torch.rand(2, 6, 16, 16))
        >>> list(terms)
        ['feature.relu2_1', 'mean_std.relu1_1', 'mean_std.relu2_1', 'total']
    """

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | os.PathLike[str] | None = "auto",
        layer: str = "relu4_1",
        content_weight: float = 1.0,
        mean_std_layers: Mapping[str, float] | None = None,
        eps: float = ADAIN_EPS,
    ) -> None:
        super().__init__()
        styles = layer_weights(ADAIN_STYLE_LAYERS if mean_std_layers is None else mean_std_layers, "mean_std", arch)
        (self.layer,) = check_layers(arch, [layer])
        self.arch, self.eps = arch, float(eps)
        self.extractor = shared_extractor(arch, [layer, *styles], weights)
        self.content = FeatureTerm(layer, check_weight(content_weight, "content weight"))
        self.engine = nn.ModuleList([self.content, *(MeanStdTerm(n, w, self.eps) for n, w in styles.items())])
        self.style_layers = list(styles)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{key: (B,)}``: every term, unweighted and unreduced."""
        if prediction.ndim != 4 or prediction.shape[1] != 3:
            raise InputError(f"the prediction must be an image (B, 3, H, W); got {tuple(prediction.shape)}")
        content, style = split_content_style(target)
        if content.shape[0] != prediction.shape[0]:
            raise InputError(f"{content.shape[0]} targets for {prediction.shape[0]} predictions")
        with torch.no_grad():
            fs = self.extractor(style, validate=False)
            fc = self.extractor(content, validate=False, layers=[self.layer])[self.layer]
            t = adain(fc, fs[self.layer], self.eps)
        fo = self.extractor(prediction, validate=False)
        out = {self.content.key: self.content.per_sample(prediction, fo, {self.layer: t.to(fo[self.layer].dtype)})}
        for term in list(self.engine)[1:]:
            out[term.key] = term.per_sample(prediction, fo, term.target_statistics(style, fs))
        return out

    def terms(
        self, prediction: torch.Tensor, target: torch.Tensor, target_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``{key: weight * batch mean of the term, ..., 'total': their sum}``.

        ``target_index`` is taken for the trainer's one call form (a multi-style loss's per-item style); the
        style is in ``target`` here, so it must be ``None``.
        """
        if target_index is not None:
            raise InputError("AdaINLoss reads each item's style from its target; it takes no style index")
        values = self.per_sample(prediction, target)
        out = {t.key: t.weight * reduce(values[t.key], "mean") for t in self.engine}
        out["total"] = torch.stack(list(out.values())).sum(0)
        return out

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.terms(prediction, target)["total"]

    def shares(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, dict[str, float]]:
        """Each weighted term's share of the total, and of its gradient with respect to the prediction.

        As :meth:`lossnet.losses.PerceptualLoss.shares`: ``{"value": {key: share}, "gradient": {...}}``.
        """
        x = prediction.detach().float().requires_grad_(True)
        with torch.enable_grad():
            reduced = {k: reduce(v, "mean") for k, v in self.per_sample(x, target).items()}
            grads = {}
            for i, (key, value) in enumerate(reduced.items()):
                (g,) = torch.autograd.grad(value, x, retain_graph=i < len(reduced) - 1)
                grads[key] = g.detach()
        measurement = Measurement({k: float(v.detach()) for k, v in reduced.items()}, grads)
        return family_shares(measurement, {t.key: t.weight for t in self.engine}, by="term")

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, layer={self.layer!r}, style_layers={self.style_layers}, eps={self.eps}"
