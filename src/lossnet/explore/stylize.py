"""Style transfer by image optimisation (Gatys, Ecker & Bethge 2016).

The image is optimised so that its features match the content image's at the content
layers and a statistic of its features matches the style image's at the style layers: per-channel
mean and std by default (Huang & Belongie 2017), Gram matrices as in Gatys et al., or sliced
Wasserstein (``StylizeConfig.style_family``). By default it starts from the content recoloured to the
style's colours (``init="recoloured"``). The terms and
their weights mean exactly what they mean in :class:`~lossnet.losses.perceptual.PerceptualLoss`:
a ratio chosen here by looking can be used to train a feed-forward network
(:meth:`StylizeResult.loss_kwargs`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from lossnet.backbones.extractor import FeatureExtractor
from lossnet.backbones.weights import LoadedWeights
from lossnet.errors import InputError
from lossnet.explore.color import luminance_only, with_content_colour
from lossnet.explore.objective import ImageObjective
from lossnet.explore.optimize import (
    INITS,
    Callback,
    OptimizeConfig,
    OptimizeResult,
    optimize_image,
    resize,
    start_image,
)
from lossnet.runtime import Runtime
from lossnet.terms import Term
from lossnet.terms.shares import DEFAULT_RULE, SHARE_RULES, Balance, balance_engine
from lossnet.terms.registry import FAMILIES, build_terms, check_options, is_style_key, split_keywords, term_layers
from lossnet.terms.spec import Family
from lossnet.validation import check_choice, check_image, check_weight

log = logging.getLogger("lossnet.explore")

#: Johnson et al. 2016's choice for style transfer with VGG16 (sec. 4.1).
DEFAULT_CONTENT_LAYERS: dict[str, float] = {"relu2_2": 1.0}
DEFAULT_STYLE_LAYERS: dict[str, float] = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}
#: The statistics ``style_layers`` can compare: their name here -> their family in :mod:`lossnet.terms.registry`.
STYLE_FAMILIES: dict[str, str] = {"gram": "style", "sliced_wasserstein": "sliced_wasserstein", "mean_std": "mean_std"}


@dataclass
class StylizeConfig:
    """Settings of :func:`stylize`.

    The feature term of layer l is weighted ``content_weight * content_layers[l]``, the style
    term ``style_weight * style_layers[l]``; ``style_family`` says which statistic the style terms
    compare (:data:`STYLE_FAMILIES`: Gram matrices, sliced Wasserstein, per-channel mean and std).
    A sliced-Wasserstein term keeps one fixed set of directions under L-BFGS (its line search needs one
    function; ``sliced_wasserstein_redraw`` in ``terms`` overrides).
    The balance of content and style depends on the weights' preprocessing:
    Caffe-preprocessed networks (``hed``, Keras files) see 0-255 pixels and have larger Gram
    matrices, relative to their features, than torch-preprocessed ones; ``lossnet sweep`` finds
    the ratio for yours.
    """

    arch: str = "vgg16"  # the loss network; "hed" weights exist for vgg16 only
    content_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    # The defaults were chosen with lossnet.metrics.style's measures on the embedded images (README, "Did the style
    # transfer?"): per-channel mean/std statistics (Huang & Belongie 2017) x1000, light TV, from the content
    # recoloured to the style's colours; the earlier Gram x10, TV 10, from the content, left textures noisier than
    # the content's (texture ratio 1.3-2.2) and colours near the content's.
    style_family: str = "mean_std"  # the statistic of the style terms: a key of STYLE_FAMILIES
    content_weight: float = 1.0
    style_weight: float = 1000.0
    tv_weight: float = 1.0  # the TV term is a per-pixel mean on [0, 1]
    init: str = "recoloured"  # "recoloured" (the content in the style's colours), "content" or "noise"
    style_scale: float = 1.0  # the style image's longer side, relative to the content's
    preserve_color: bool = False  # luminance-only transfer (Gatys et al. 2016, arXiv:1606.05897)
    seed: int = 0  # seed of the noise start
    # 150 L-BFGS steps: from the recoloured start the measures settle by then, and texture drifts back toward the
    # content's after (chelsea/ihc, 128 px, fp32: texture ratio 0.70 at 150 steps, 0.89 at 300)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(steps=150))
    # {family: share}: give each family this share of the loss instead of the weights above (their layers keep their
    # ratios), calibrated on the inputs (lossnet.terms.shares); empty: the weights as given
    shares: dict[str, float] = field(default_factory=dict)
    share_rule: str = DEFAULT_RULE  # "gradient" (the norm of each family's pull on the image) or "value"
    # more terms, as PerceptualLoss keywords of any family of lossnet.terms.registry (mrf_layers={...}, ...), with
    # their weights as given (not scaled by content_weight/style_weight): a style family's compare with the style image
    terms: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice(self.init, INITS, "init")
        for name in ("content_weight", "style_weight", "tv_weight"):
            check_weight(getattr(self, name), name)
        if not self.style_scale > 0:
            raise InputError(f"style_scale must be > 0; got {self.style_scale}")
        split_keywords(self.terms, "StylizeConfig.terms")
        check_choice(self.share_rule, SHARE_RULES, "share_rule")
        check_choice(self.style_family, tuple(STYLE_FAMILIES), "style_family")
        keyword = self.family.keyword
        if self.style_layers and keyword in self.terms:
            raise InputError(
                f"the {self.style_family} style layers are given twice, as style_layers and as terms[{keyword!r}]; "
                f"give them once (style_layers are weighted by style_weight, terms as given)"
            )

    @property
    def family(self) -> Family:
        """The term family of :mod:`lossnet.terms.registry` that ``style_family`` names (its name and keyword)."""
        return FAMILIES[STYLE_FAMILIES[self.style_family]]

    @property
    def layers(self) -> list[str]:
        """Every layer the loss network must return."""
        return list(dict.fromkeys([*self.content_layers, *self.style_layers, *term_layers(self.arch, self.terms)]))

    def style_keywords(self, weight: float | None = None) -> dict[str, Any]:
        """The style terms as :class:`~lossnet.PerceptualLoss` keywords, each layer weighted ``weight *
        style_layers[l]`` (default ``style_weight``), plus the options stylize sets: ``{}`` without style layers."""
        if not self.style_layers:
            return {}
        weight = self.style_weight if weight is None else weight
        family = self.family
        out: dict[str, Any] = {family.keyword: {k: weight * v for k, v in self.style_layers.items()}}
        if family.name == "sliced_wasserstein" and "sliced_wasserstein_redraw" not in self.terms:
            out["sliced_wasserstein_redraw"] = self.optimize.optimizer != "lbfgs"
        return out

    def extra_terms(self, extractor: FeatureExtractor, style_weight: float | None = None) -> list[Term]:
        """The terms of :attr:`terms`, and the style terms of a family other than Gram, on ``extractor``.

        LPIPS and DISTS are allowed off their published trunk, and then named ``lpips_like``/``dists_like``.
        """
        given = dict(self.terms)
        if self.style_family != "gram":
            given |= self.style_keywords(style_weight)
        values, options = split_keywords(given, "StylizeConfig.terms")
        checked = {name: FAMILIES[name].value(v, self.arch) for name, v in values.items()}
        return build_terms(checked, check_options(options), self.arch, extractor, (0.0, 1.0), strict=False)

    def gram_layers(self, weight: float | None = None) -> dict[str, float]:
        """The Gram terms' ``{layer: weight}`` (``weight`` default ``style_weight``): empty for another family."""
        weight = self.style_weight if weight is None else weight
        return {k: weight * v for k, v in self.style_layers.items()} if self.style_family == "gram" else {}

    def weighted_layers(self) -> tuple[dict[str, float], dict[str, float]]:
        """The effective ``({content layer: weight}, {style layer: weight})`` (of ``style_family``'s terms)."""
        return (
            {k: self.content_weight * v for k, v in self.content_layers.items()},
            {k: self.style_weight * v for k, v in self.style_layers.items()},
        )


@dataclass
class StylizeResult:
    """The stylised image and how the loss went.

    Attributes:
        image: ``(1, 3, H, W)`` in [0, 1], the content's size.
        optimization: the optimisation's history and final terms.
        config: the settings used (with shares, the weights they resolved to, and no shares).
        balance: how the shares were resolved, or ``None`` when the weights were given.
    """

    image: torch.Tensor
    optimization: OptimizeResult
    config: StylizeConfig
    balance: Balance | None = None

    @property
    def content_loss(self) -> float:
        """The weighted sum of the feature terms of the result."""
        return sum(v for k, v in self.optimization.final.items() if k.startswith("feature."))

    @property
    def style_loss(self) -> float:
        """The weighted sum of the style terms of the result (Gram, and any other style family's)."""
        return sum(v for k, v in self.optimization.final.items() if is_style_key(k))

    def loss_kwargs(self) -> dict[str, Any]:
        """The :class:`~lossnet.PerceptualLoss` arguments with the same terms and weights."""
        content, _ = self.config.weighted_layers()
        return {
            "arch": self.config.arch,
            "feature_layers": content,
            "style_layers": self.config.gram_layers(),
            "tv_weight": self.config.tv_weight,
            **self.config.terms,
            **({} if self.config.style_family == "gram" else self.config.style_keywords()),
        }


def build_extractor(
    arch: str,
    layers: list[str],
    weights: str | os.PathLike[str] | LoadedWeights | None,
    device: str | torch.device = "cpu",
    preprocessing: str | None = None,
    precision: str | Runtime | None = None,
) -> FeatureExtractor:
    """The frozen loss network of the explore tools on ``device``, returning ``layers``, for [0, 1] images.

    ``precision`` is its ``compute_dtype`` (``None``/``'fp32'``: float32; a :class:`~lossnet.runtime.Runtime`
    gives its dtype). Which network and weights it is goes to the ``lossnet.explore`` log (INFO).
    """
    fx = FeatureExtractor(arch, layers, weights, (0.0, 1.0), preprocessing, compute_dtype=precision).to(device)
    log.info("loss network %s to %s, weights %s, on %s", arch, fx.layers[-1], fx.weights_id, device)
    return fx


def stylize(
    content: torch.Tensor,
    style: torch.Tensor,
    weights: str | os.PathLike[str] | LoadedWeights | None = "auto",
    config: StylizeConfig | None = None,
    callback: Callback | None = None,
    extractor: FeatureExtractor | None = None,
) -> StylizeResult:
    """Optimise an image to have the content of one image and the style of another.

    Args:
        content: ``(1, 3, H, W)`` in [0, 1]; the result has its size.
        style: ``(1, 3, H', W')`` in [0, 1]; it is resized so that its longer side is
            ``style_scale`` times the content's (at every pyramid level).
        weights: the loss network's weights (anything :class:`~lossnet.FeatureExtractor` takes); ``auto``:
            ImageNet where it can be had, else HED.
        config: layers, weights, start, colour preservation and the optimisation.
        callback: called after every step as ``callback(step, terms)``.
        extractor: a loss network already built with at least ``config.layers`` (its device is
            used); ``weights`` is then ignored.

    Returns:
        A :class:`StylizeResult`.

    Example:
        >>> config = StylizeConfig(arch="vgg11", content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0},
        ...                        optimize=OptimizeConfig(steps=3))
        >>> result = stylize(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), weights=None, config=config)
        >>> tuple(result.image.shape), len(result.optimization.history)
        ((1, 3, 16, 16), 3)
    """
    config = config or StylizeConfig()
    check_image(content, "content image", (0.0, 1.0))
    check_image(style, "style image", (0.0, 1.0))
    fx = extractor or build_extractor(config.arch, config.layers, weights)
    device = fx.preprocess.weight.device
    content, style = content.to(device), style.to(device)
    colour_source = content
    if config.preserve_color:
        content, style = luminance_only(content, style)
    content_layers, _ = config.weighted_layers()
    style_layers = config.gram_layers()
    extra = config.extra_terms(fx)
    style_side = max(1, round(config.style_scale * max(content.shape[-2:])))
    style = resize(style, _longer_side(style, style_side))
    fx.check(content, "content image")
    fx.check(style, "style image")
    balance = None
    if config.shares:
        config, balance = resolve_shares(config, fx, content, style)
        content_layers, style_layers = config.weighted_layers()
        extra = config.extra_terms(fx)

    def make_objective(size: tuple[int, int]) -> ImageObjective:
        scale = max(size) / max(content.shape[-2:])
        style_level = resize(style, _longer_side(style, max(fx.min_size, round(scale * style_side))))
        return ImageObjective(
            fx, resize(content, size), content_layers, style_level, style_layers, config.tv_weight, extra
        )

    init = start_image(config.init, content, config.seed, reference=style)
    result = optimize_image(make_objective, init, config.optimize, callback, min_size=fx.min_size)
    image = with_content_colour(result.image, colour_source) if config.preserve_color else result.image
    return StylizeResult(image=image, optimization=result, config=config, balance=balance)


def resolve_shares(
    config: StylizeConfig, extractor: FeatureExtractor, content: torch.Tensor, style: torch.Tensor
) -> tuple[StylizeConfig, Balance]:
    """The config with its shares resolved to weights on ``extractor``, and how (:mod:`lossnet.terms.shares`).

    The calibration image is the mean of the content image and the style image resized to the content's
    size: at the content image itself the content terms are 0 and pull nothing, so no weight gives them
    a share there. The returned config has ``content_weight = style_weight = 1``, the resolved weights in
    its layers, TV weight and extra terms, and no shares.

    Args:
        config: with :attr:`StylizeConfig.shares`.
        extractor: the loss network, returning ``config.layers``.
        content: ``(1, 3, H, W)`` in [0, 1].
        style: ``(1, 3, H', W')`` in [0, 1], at the size the style terms compare with.
    """
    content_layers, _ = config.weighted_layers()
    # the style layers are Gram terms here only for the Gram family; another family's are among the extra terms
    objective = ImageObjective(extractor, content, content_layers, style, config.gram_layers(), config.tv_weight,
                               config.extra_terms(extractor))  # fmt: skip
    probe = (content + resize(style, tuple(content.shape[-2:]))) / 2
    balance = balance_engine(
        objective.engine, extractor, probe, None, config.shares, config.share_rule, "mean of content and style"
    )
    resolved = balance.keywords
    terms = {k: resolved.get(k, v) for k, v in config.terms.items()}
    new = replace(
        config,
        content_layers=resolved.get("feature_layers", {}),
        style_layers=resolved.get(config.family.keyword, {}),
        content_weight=1.0,
        style_weight=1.0,
        tv_weight=resolved.get("tv_weight", 0.0),
        terms=terms,
        shares={},
    )
    return new, balance


def _longer_side(x: torch.Tensor, side: int) -> tuple[int, int]:
    h, w = x.shape[-2:]
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))
