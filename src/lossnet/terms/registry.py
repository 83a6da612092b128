"""The table of term families: one entry per family, and everything generated from it.

A family is a kind of term (feature distance, Gram matrix, LPIPS, ...). Its entry in :data:`FAMILIES`
(a :class:`~lossnet.terms.spec.Family`) says, once, everything the rest of lossnet needs to know about it:

- its name, which is also the prefix of its keys in a terms dict (``"style.relu1_2"``, ``"tv"``);
- whether it is given as per-layer weights (``style_layers={layer: w}``) or one scalar weight
  (``tv_weight=w``): that keyword is :attr:`Family.keyword`, and its flag is :attr:`Family.flag`;
- its options (:class:`Option`: name, type, default, help), which become keywords and flags too;
- its :class:`~lossnet.terms.base.Term` class, and how to build it when it needs more than
  ``Term(layer, weight, **options)`` (LPIPS, DISTS);
- which image it compares with in style transfer (``"target"``: the call's target or the content
  image; ``"style"``: the style image fixed once by ``set_style_target``; ``"none"``: a regulariser);
- the presets that introduce it, and its public loss functions and modules.

From the table come :class:`~lossnet.PerceptualLoss`'s keywords (:func:`term_keywords`, :func:`build_terms`),
the presets, the command-line flags of ``compare``, ``train`` and the explore commands, the term fields
of ``TrainConfig``, and the one layer union (:func:`term_layers`). A new family is its module plus one
entry here.

>>> [f.keyword for f in FAMILIES.values()][:4]
['pixel_weight', 'feature_layers', 'style_layers', 'contextual_layers']
>>> term_layers("vgg16", {"feature_layers": {"relu2_2": 1.0}, "lpips_weight": 1.0, "mrf_layers": ["relu3_1"]})
['relu2_2', 'relu3_1', 'relu1_2', 'relu3_3', 'relu4_3', 'relu5_3']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossnet.backbones.calibration import LPIPS_TRUNKS
from lossnet.backbones.calibration import dists_calibration as load_dists_calibration
from lossnet.backbones.calibration import lpips_calibration as load_lpips_heads
from lossnet.backbones.extractor import FeatureExtractor
from lossnet.errors import InputError
from lossnet.functional.contextual import DEFAULT_MEMORY_BUDGET
from lossnet.functional.criteria import CRITERIA
from lossnet.functional.dists import DISTS_LAYERS
from lossnet.functional.total_variation import TV_KINDS
from lossnet.terms import mean_std, random_net, sliced_wasserstein
from lossnet.terms.base import Term
from lossnet.terms.calibrated import DistsTerm, LpipsTerm, check_published
from lossnet.terms.families import ContextualTerm, FocalFrequencyTerm, MRFTerm
from lossnet.terms.kinds import FeatureTerm, GramTerm, PixelTerm, TVTerm
from lossnet.terms.spec import BuildContext, Family, Option
from lossnet.validation import Range, suggest


# -- the entries -------------------------------------------------------------------------------------

CRITERION = Option("criterion", "mse", "distance of the pixel, feature and style terms", str, tuple(CRITERIA))


def _lpips_layers(arch: str) -> tuple[str, ...]:
    return LPIPS_TRUNKS.get(arch, ("", ()))[1]


def _build_lpips(value: float, c: BuildContext) -> list[Term]:
    cal = load_lpips_heads(c.arch, c.options["lpips_calibration"])
    published = check_published("lpips", c.extractor, cal.published, c.strict)  # type: ignore[arg-type]
    return [LpipsTerm(cal.heads, value, published=published)]


def _check_dists(arch: str, pooling: str) -> None:
    if arch != "vgg16" or pooling != "l2":
        raise InputError(
            f"the DISTS term runs on the L2-pooled VGG16; got arch={arch!r}, pooling={pooling!r}. Pass "
            "arch='vgg16', pooling='l2' (the other terms then read that pass too), "
            "or use lossnet.losses.DISTSLoss alone"
        )


def _build_dists(value: float, c: BuildContext) -> list[Term]:
    dists = load_dists_calibration(c.options["dists_calibration"])
    published = check_published("dists", c.extractor, dists.published, c.strict)  # type: ignore[arg-type]
    return [DistsTerm(dists.alpha, dists.beta, c.input_range, value, published=published)]


_ENTRIES = (
    Family("pixel", PixelTerm, "the per-pixel distance", layered=False, options=(CRITERION,)),
    Family("feature", FeatureTerm, "feature (content) terms", options=(CRITERION,), paper="Johnson et al. 2016"),
    Family("style", GramTerm, "Gram (style) terms", options=(CRITERION,), target="style", paper="Gatys et al. 2016"),
    Family(
        "contextual",
        ContextualTerm,
        "contextual-loss terms (features matched as a set; the target may be misaligned)",
        options=(
            Option("contextual_band_width", 0.5, "the contextual loss's band width h", param="band_width"),
            Option(
                "contextual_max_positions", None, "sample at most this many positions per map (none: all)", int,
                param="max_positions", optional=True,
            ),
            Option(
                "contextual_memory_budget", DEFAULT_MEMORY_BUDGET, "bytes the similarity matrix may take", int,
                param="memory_budget", cli=False,
            ),
        ),
        paper="Mechrez et al. 2018",
    ),
    Family(
        "mrf",
        MRFTerm,
        "MRF patch terms against the style image",
        options=(
            Option("mrf_patch_size", 3, "side of the MRF feature patches", int, param="patch_size"),
            Option("mrf_style_stride", 1, "stride of the style image's MRF patches", int, param="style_stride"),
        ),
        target="style",
        paper="Li & Wand 2016",
    ),
    Family("tv", TVTerm, "the total variation of the prediction", layered=False, target="none",
           options=(Option("tv_kind", "anisotropic", "anisotropic (L1) or isotropic (L2) TV", str, TV_KINDS, "kind"),)),
    Family(
        "focal_frequency",
        FocalFrequencyTerm,
        "the focal frequency term on the images",
        layered=False,
        options=(
            Option("focal_frequency_alpha", 1.0, "the focal frequency loss's spectrum weight exponent", param="alpha"),
        ),
        paper="Jiang et al. 2021",
    ),
    Family(
        "lpips",
        LpipsTerm,
        "the LPIPS term on the network's LPIPS layers",
        layered=False,
        options=(Option("lpips_calibration", None, "the LPIPS heads file (default: the lpips wheel's v0.1)", str),),
        reads=_lpips_layers,
        build=_build_lpips,
        paper="Zhang et al. 2018",
    ),
    Family(
        "dists",
        DistsTerm,
        "the DISTS term; needs --arch vgg16 --pooling l2",
        layered=False,
        options=(
            Option("dists_calibration", None, "DISTS' alpha/beta file (default: the DISTS_pytorch wheel's)", str),
        ),
        reads=lambda arch: DISTS_LAYERS,
        check=_check_dists,
        build=_build_dists,
        paper="Ding et al. 2020",
    ),
    Family(
        "sliced_wasserstein",
        sliced_wasserstein.SlicedWassersteinTerm,
        "sliced-Wasserstein style terms against the style image (feature distributions, not only Grams)",
        options=(
            Option(
                "sliced_wasserstein_directions",
                None,
                "random directions per layer and call (none: the layer's channels)",
                int, param="directions", optional=True,
            ),
            Option("sliced_wasserstein_seed", 0, "seed of the sliced-Wasserstein directions", int, param="seed"),
            Option(
                "sliced_wasserstein_redraw", True, "new sliced-Wasserstein directions at every call", bool,
                param="redraw",
            ),
            Option(
                "sliced_wasserstein_target_positions", 8192,
                "keep at most this many of the style image's positions per layer (a seeded sample; none: all)",
                int, param="target_positions", optional=True,
            ),
        ),
        target="style",
        presets={
            "sliced_wasserstein_style": dict(
                arch="vgg19",
                terms=dict(
                    feature_layers={"conv4_2": 1.0},
                    sliced_wasserstein_layers={f"relu{i}_1": 1.0 for i in range(1, 6)},
                ),
                shares={"feature": 0.43, "sliced_wasserstein": 0.57},
                source="Heitz, Vanhoey, Chambon & Belcour 2021, 'A Sliced Wasserstein Loss for Neural Texture "
                "Synthesis' (CVPR, arXiv:2006.07229): VGG19 relu1_1..relu5_1, as many random directions as "
                "channels, redrawn at every step",
                notes="The paper synthesises textures, with no content term; lossnet adds Gatys' content term "
                "(conv4_2) so that the recipe also does style transfer (train style, stylize). Means over "
                "directions and positions instead of sums; a style image of another size is matched by resampling "
                "its sorted projections (lossnet.terms.sliced_wasserstein). The weights (1 each) are lossnet's "
                "starting point, not tuned against the authors' code.",
            )
        },
        exports=sliced_wasserstein.EXPORTS,
        paper="Heitz et al. 2021",
    ),
    Family(
        "mean_std",
        mean_std.MeanStdTerm,
        "mean/std (AdaIN statistics) style terms against the style image",
        target="style",
        presets={
            "adain_style": dict(
                arch="vgg19",
                terms=dict(
                    feature_layers={"relu4_1": 1.0},
                    mean_std_layers={f"relu{i}_1": 10.0 for i in range(1, 5)},
                ),
                shares={"feature": 0.022, "mean_std": 0.98},
                source="Huang & Belongie 2017, 'Arbitrary Style Transfer in Real-time with Adaptive Instance "
                "Normalization' (ICCV, arXiv:1703.06868), eq. 11-12: mean/std of VGG19 relu1_1..relu4_1, content "
                "at relu4_1, style weight 10 as in their released code",
                notes="Their content target is the AdaIN output's relu4_1 features, which only an AdaIN network "
                "has; lossnet's is the content image's. Squared distances averaged over channels instead of L2 "
                "norms (finite gradient at agreement; lossnet.terms.mean_std), so the weights are not the "
                "paper's scale: retune the style/content ratio.",
            )
        },
        exports=mean_std.EXPORTS,
        paper="Huang & Belongie 2017",
    ),
    Family(
        "random_net",
        random_net.RandomNetTerm,
        "the weight-free random-network Gram term against the style image (reads no weight file)",
        layered=False,
        options=(
            Option("random_net_seed", 0, "seed of the random network's filters", int, param="seed"),
            Option("random_net_channels", 64, "filters per block of the random network", int, param="channels"),
            Option("random_net_stages", 3, "blocks of the random network", int, param="stages"),
        ),
        target="style",
        presets={
            "random_net_style": dict(
                arch="vgg16",
                terms=dict(random_net_weight=1e6),
                shares={"random_net": 1.0},
                source="Ustyuzhaninov, Brendel, Gatys & Bethge 2017, 'What does it take to generate natural "
                "textures?' (ICLR): Gram matrices of a random convolutional network synthesise textures; Amir & "
                "Weiss 2021, 'Understanding and Simplifying Perceptual Distances' (CVPR): random-filter features "
                "as a perceptual distance",
                notes="A texture/style term that needs no trunk and no weight file (the arch is not used). Their "
                "best network is one layer of many multi-scale filters; lossnet's has 3 blocks of 64 3x3 filters "
                "with average pooling between (lossnet.terms.random_net). It has no content term: add "
                "--feature-layers on a trunk, or --pixel-weight. Unweighted, on 64 px crops of the 128 px "
                "built-in images, "
                "the term is about 2e-8 between two crops of grass, 6e-8 between grass and brick and 3e-6 between "
                "grass and chelsea; the weight 1e6 brings a style's term to order 1, "
                "lossnet's starting point, not a number from the papers.",
            )
        },
        exports=random_net.EXPORTS,
        paper="Ustyuzhaninov et al. 2017; Amir & Weiss 2021",
    ),
)

#: Every term family, by name, in the order of a terms dict.
FAMILIES: dict[str, Family] = {family.name: family for family in _ENTRIES}


def _options() -> dict[str, Option]:
    out: dict[str, Option] = {}
    for family in FAMILIES.values():
        for option in family.options:
            if out.setdefault(option.name, option) != option:
                raise RuntimeError(f"two families declare the option {option.name!r} differently")  # a table error
    return out


#: Every family option, by keyword (an option shared by several families appears once).
OPTIONS: dict[str, Option] = _options()


def term_keywords() -> list[str]:
    """Every family keyword and option keyword, in table order.

    >>> term_keywords()[:3]
    ['pixel_weight', 'criterion', 'feature_layers']
    """
    out: list[str] = []
    for family in FAMILIES.values():
        out += [family.keyword] + [o.name for o in family.options if o.name not in out]
    return out


def family_of(keyword: str) -> Family | None:
    """The family whose keyword is ``keyword`` (``"style_layers"``), or ``None``."""
    return next((f for f in FAMILIES.values() if f.keyword == keyword), None)


def split_keywords(given: Mapping[str, Any], what: str = "PerceptualLoss") -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keywords into ``({family name: value}, {option: value})``; an unknown one is an :class:`InputError`."""
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    known = term_keywords()
    for key, value in given.items():
        family = family_of(key)
        if family is not None:
            values[family.name] = value
        elif key in OPTIONS:
            options[key] = value
        else:
            raise InputError(f"{what} has no keyword {key!r}.{suggest(key, known)} The term keywords are {known}")
    return values, options


def term_layers(arch: str, given: Mapping[str, Any]) -> list[str]:
    """The one layer union: every trunk layer the terms of ``given`` read, each once, in table order.

    Args:
        arch: the trunk (it decides LPIPS' layers).
        given: family keywords (``{"feature_layers": ..., "lpips_weight": ...}``) or family names
            (``{"feature": ...}``); other keys are ignored.
    """
    out: dict[str, None] = {}
    for family in FAMILIES.values():
        value = given.get(family.keyword, given.get(family.name))
        if value:
            value = family.value(value, None)
            out |= dict.fromkeys(family.layers(value, arch))
    return list(out)


def build_terms(
    values: Mapping[str, Any],
    options: Mapping[str, Any],
    arch: str,
    extractor: FeatureExtractor | None,
    input_range: Range,
    strict: bool = True,
) -> list[Term]:
    """Every term of ``values`` (``{family name: checked value}``), in table order.

    ``options`` must hold every option (:func:`check_options` fills the defaults).
    """
    context = BuildContext(arch, extractor, input_range, strict, dict(options))
    terms: list[Term] = []
    for family in FAMILIES.values():
        if values.get(family.name) and family.check is not None:
            family.check(arch, extractor.pooling if extractor is not None else "max")
        terms += family.terms(values.get(family.name), context)
    return terms


def check_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option, with the given ones checked and the rest at their defaults."""
    return {name: option.check(given.get(name, option.default)) for name, option in OPTIONS.items()}


def style_families() -> tuple[str, ...]:
    """The families a fixed style image feeds (``set_style_target``, style transfer's style image)."""
    return tuple(f.name for f in FAMILIES.values() if f.target == "style")


def is_style_key(key: str) -> bool:
    """Whether a term's key (``"<family>.<layer>"`` or ``"<family>"``) belongs to a style-image family.

    >>> is_style_key("style.relu1_2"), is_style_key("sliced_wasserstein.relu2_2"), is_style_key("feature.relu2_2")
    (True, True, False)
    """
    return key.split(".")[0] in style_families()
