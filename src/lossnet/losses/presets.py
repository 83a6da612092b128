"""Perceptual-loss recipes from the literature, by name.

Typical magnitudes (HED VGG16, x4-blurred astronaut vs the original at 256 px; the README's
"Loss scales" table has every term): ``johnson2016_style`` feature ~5e2 and style ~8e2, almost
all of it from relu1_2; ``johnson2016_superres`` ~5e2; ``fastai_feature_loss`` on VGG16 pixel
~4e-2, features ~3e1, Grams ~5e3 (99% of the total). A per-pixel MSE between such images is
~5e-3. :func:`lossnet.term_shares` gives the shares for your own images and weights.

>>> PRESETS["esrgan"].arch, PRESETS["esrgan"].feature_layers, PRESETS["esrgan"].shares
('vgg19', {'conv5_4': 1.0}, {'pixel': 0.0051, 'feature': 0.99})

The presets of the later term families are declared with their family, in the table of families
(:data:`lossnet.terms.registry.FAMILIES`), and collected here.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from lossnet.losses.perceptual import PerceptualLoss
from lossnet.terms.registry import FAMILIES, OPTIONS, family_of, split_keywords
from lossnet.validation import check_choice


@dataclass(frozen=True)
class Preset:
    """A published recipe: the :class:`PerceptualLoss` arguments plus where they come from.

    Attributes:
        arch: loss network.
        terms: the term keywords of :class:`PerceptualLoss` (:func:`lossnet.terms.registry.term_keywords`):
            ``feature_layers``, ``style_layers``, ``pixel_weight``, ``criterion``, ``lpips_weight``, ...
            Each is also readable as an attribute (``preset.style_layers``), at its default when not set.
        pooling: ``"max"`` or ``"l2"``.
        shares: the recipe in shares (``{family: share}``, :mod:`lossnet.terms.shares`), for ``--balance shares``
            or :meth:`PerceptualLoss.calibrate`: the gradient shares its raw weights give on HED's VGG16 (a random
            seeded VGG for the layers and poolings HED's VGG16 lacks: esrgan, contextual_superres, dists), between
            a x4-blurred astronaut and the original at 128 px, with ihc as the style image. Put on another trunk,
            they keep the balance the recipe has on the trunk lossnet has offline; the raw weights stay for
            reproducing the papers.
        source: the paper or course it reproduces.
        notes: where lossnet departs from the source, and why.
    """

    arch: str
    terms: dict[str, Any] = field(default_factory=dict)
    pooling: str = "max"
    shares: dict[str, float] = field(default_factory=dict)
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        split_keywords(self.terms, "a preset")  # an unknown keyword is an error, with the closest one

    def __getattr__(self, name: str) -> Any:
        family = family_of(name)
        if family is not None:
            return copy.deepcopy(self.terms.get(name, {} if family.layered else 0.0))
        if name in OPTIONS:
            return self.terms.get(name, OPTIONS[name].default)
        raise AttributeError(name)

    def kwargs(self) -> dict[str, Any]:
        """The :class:`PerceptualLoss` keyword arguments of this preset (Johnson's four terms and the
        criterion always, the later families only when used)."""
        kwargs: dict[str, Any] = {"arch": self.arch} | {name: getattr(self, name) for name in _ALWAYS}
        kwargs |= {k: copy.deepcopy(v) for k, v in self.terms.items() if k not in _ALWAYS}
        return kwargs | ({"pooling": self.pooling} if self.pooling != "max" else {})


#: The keywords every preset's :meth:`Preset.kwargs` lists, used or not (as the first presets did).
_ALWAYS = ("feature_layers", "style_layers", "pixel_weight", "tv_weight", "criterion")

_FASTAI_LAYERS = {"relu3_3": 5.0, "relu4_3": 15.0, "relu5_3": 2.0}

PRESETS: dict[str, Preset] = {
    "johnson2016_style": Preset(
        arch="vgg16",
        terms=dict(
            feature_layers={"relu2_2": 1.0},
            style_layers={"relu1_2": 5.0, "relu2_2": 5.0, "relu3_3": 5.0, "relu4_3": 5.0},
            tv_weight=1e-6,
        ),
        shares={"feature": 0.024, "style": 0.98, "tv": 1.2e-12},
        source="Johnson, Alahi & Fei-Fei 2016, arXiv:1603.08155, sec. 4.1 (style transfer); "
        "weights as in their released code (content 1, style 5, TV 1e-6)",
        notes="Those weights were set for Caffe-preprocessed inputs (0-255); with torch-preprocessed "
        "weights the features are smaller, so retune the style/content ratio. lossnet's TV is an L1 mean "
        "per pixel on input_range, not the paper's squared form.",
    ),
    "lossnet_style": Preset(
        arch="vgg16",
        terms=dict(
            feature_layers={"relu2_2": 1.0},
            pixel_weight=3e4,
            tv_weight=1e-6,
            sliced_wasserstein_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0},
        ),
        shares={"pixel": 0.063, "feature": 0.23, "tv": 1.1e-11, "sliced_wasserstein": 0.71},
        source="lossnet's style-transfer recipe (train style --loss perceptual): Johnson et al. 2016's network, "
        "content layer and TV; the style statistic of Heitz et al. 2021 (sliced Wasserstein) at Johnson's four "
        "style layers; a pixel term",
        notes="Measured on HED's VGG16 (the offline trunk), 100 steps at 64 px, seeds 0-2, fp32 and bf16: "
        "Johnson's Gram recipe gives beige blobs whose layout correlation with their content is -0.6 to 0.8 by "
        "seed (HED's relu2_2 puts an inverted image about as far from the original as a flat one, and a flat "
        "image is closer to the style's relu1_2 Gram than the content image is). Sliced Wasserstein puts a flat "
        "image twice as far as the content, and the pixel term pins the layout's sign: the layout correlation "
        "is 0.60 to 0.93, and the style terms end at 0.31-0.68x the content image's own. Pixel weight 1e4 left "
        "one image at 0.51 in fp32. The weights are HED-scale numbers: retune them on another trunk. "
        "johnson2016_style (--loss paper) is the paper's recipe.",
    ),
    "johnson2016_superres": Preset(
        arch="vgg16",
        terms=dict(
            feature_layers={"relu2_2": 1.0},
        ),
        shares={"feature": 1.0},
        source="Johnson, Alahi & Fei-Fei 2016, arXiv:1603.08155, sec. 4.2 (single-image super-resolution)",
        notes="The paper adds TV with a strength tuned per run (1e-6 to 1e-4); set tv_weight to add it.",
    ),
    "lossnet_superres": Preset(
        arch="vgg16",
        terms=dict(
            feature_layers={"relu2_2": 1.0},
            pixel_weight=1e5,
        ),
        shares={"pixel": 0.48, "feature": 0.52},
        source="lossnet's x4 super-resolution recipe (train superres --loss perceptual): Johnson et al. 2016's "
        "relu2_2 feature term plus a per-pixel MSE term of about the same size",
        notes="Measured on HED's VGG16 (the offline trunk), 300 steps at 64 px, bf16: relu2_2 alone let the "
        "network drift darker by 0.02-0.06 per channel on the held-out images (HED's edge-tuned features hardly "
        "see a global shift), 26.21 dB against bicubic's 31.46 and a feature distance worse than the pixel "
        "network's (68.1 against 65.7). With the pixel term (MSE x 1e5, about as large as the feature term on "
        "HED) the shift is under 0.011 and 32.08-32.34 dB over seeds 0-2 in bf16 and fp32. The weight is a HED-scale number: "
        "retune it on another trunk. johnson2016_superres (--loss paper) is the paper's recipe.",
    ),
    "fastai_feature_loss": Preset(
        arch="vgg16_bn",
        terms=dict(
            feature_layers=dict(_FASTAI_LAYERS),
            style_layers={name: w**2 * 5e3 for name, w in _FASTAI_LAYERS.items()},
            pixel_weight=1.0,
            criterion="l1",
        ),
        shares={"pixel": 1.3e-06, "feature": 0.0026, "style": 1.0},
        source="fastai course v3, lesson 7 (lesson7-superres): FeatureLoss(vgg16_bn, blocks[2:5], [5, 15, 2]), "
        "Gram term weighted w**2 * 5e3, plus L1 on pixels",
        notes="blocks[2:5] are the ReLUs just before fastai's max-pools with 0-based indices 2, 3 and 4, "
        "i.e. relu3_3, relu4_3 and relu5_3. fastai computes the pixel L1 on ImageNet-normalised images; "
        "lossnet computes it on input_range, so the pixel term is about 4x smaller than fastai's.",
    ),
    "lossnet_colorize": Preset(
        arch="vgg16",
        terms=dict(
            feature_layers={name: 30 * w for name, w in _FASTAI_LAYERS.items()},
            style_layers={name: 400 * w**2 for name, w in _FASTAI_LAYERS.items()},
            pixel_weight=6e4,
            criterion="l1",
        ),
        shares={"pixel": 0.33, "feature": 0.37, "style": 0.3},
        source="lossnet's colourisation recipe (train colorize --loss perceptual): fastai lesson 7's three families "
        "(pixel L1, L1 on relu3_3/relu4_3/relu5_3 weighted 5:15:2, their Grams weighted 25:225:4), rebalanced",
        notes="Measured on HED's VGG16 (the offline trunk), 80 steps at 64 px, seeds 0-2: with fastai's weights the "
        "Grams are all of the gradient (shares pixel 1e-6, feature 0.003), HED's edge-tuned features hardly see "
        "colour, and the output stayed grey (held-out loss 0.96-1.04 of its start, PSNR 0.2-0.3 dB below the grey "
        "input). In these weights each family pulls about a third, and the held-out loss fell to 0.70-0.86 of its "
        "start, 1.1-2.5 dB over the grey input, in fp32 and bf16. Without the pixel term (features and Grams "
        "half and half) it stayed grey. The weights are HED-scale numbers: retune them on another trunk. "
        "fastai_feature_loss (--loss paper) is fastai's recipe.",
    ),
    "gatys2016": Preset(
        arch="vgg19",
        terms=dict(
            feature_layers={"conv4_2": 1.0},
            style_layers={name: 1e3 / 5 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")},
        ),
        shares={"feature": 0.021, "style": 0.98},
        source="Gatys, Ecker & Bethge 2016, 'Image Style Transfer Using CNNs' (CVPR): content conv4_2, "
        "style relu1_1..relu5_1 equally weighted",
        notes="The paper's Gram is unnormalised and its alpha/beta ratio (1e-3..1e-4) is tied to that; "
        "lossnet's Gram is divided by C*H*W and its losses are means, so the style weights here (1e3 in all, "
        "split equally) are lossnet's own starting point, not the paper's numbers.",
    ),
    "esrgan": Preset(
        arch="vgg19",
        terms=dict(
            feature_layers={"conv5_4": 1.0},
            pixel_weight=1e-2,
            criterion="l1",
        ),
        shares={"pixel": 0.0051, "feature": 0.99},
        source="Wang et al. 2018, ESRGAN, arXiv:1809.00219: VGG19 conv5_4 features before activation, L1; "
        "pixel L1 weighted 1e-2",
        notes="The adversarial term (5e-3) is not part of a perceptual loss and is left out.",
    ),
    "lpips_vgg": Preset(
        arch="vgg16",
        terms=dict(
            lpips_weight=1.0,
            pixel_weight=2.0,
            criterion="l1",
        ),
        shares={"pixel": 0.11, "lpips": 0.89},
        source="Rombach et al. 2022, latent diffusion (arXiv:2112.10752), autoencoder loss as in their "
        "LPIPSWithDiscriminator: L1 on pixels + LPIPS-VGG (Zhang et al. 2018, v0.1 heads) with weight 1",
        notes="Their L1 is on images in [-1, 1], twice the L1 on lossnet's [0, 1], hence pixel weight 2. The "
        "adversarial and KL terms are not perceptual losses and are left out. LPIPS is published only on "
        "torchvision's ImageNet VGG16; on another trunk the term must be allowed (strict=False, "
        "--allow-uncalibrated) and is named lpips_like.",
    ),
    "dists": Preset(
        arch="vgg16",
        terms=dict(
            dists_weight=1.0,
        ),
        pooling="l2",
        shares={"dists": 1.0},
        source="Ding, Ma, Wang & Simoncelli 2020, 'Image Quality Assessment: Unifying Structure and Texture "
        "Similarity' (TPAMI, arXiv:2004.07728): DISTS as the objective of perceptual optimisation",
        notes="DISTS alone, on its L2-pooled VGG16 with the published alpha/beta. Published only on torchvision's "
        "ImageNet VGG16; on another trunk the term must be allowed (strict=False, --allow-uncalibrated) and is "
        "named dists_like.",
    ),
    "contextual_superres": Preset(
        arch="vgg19",
        terms=dict(
            contextual_layers={"relu3_4": 0.1},
            pixel_weight=1.0,
            criterion="l1",
        ),
        shares={"pixel": 0.11, "contextual": 0.89},
        source="Mechrez, Talmi, Shama & Zelnik-Manor 2018, 'Maintaining Natural Image Statistics with the "
        "Contextual Loss' (ACCV, arXiv:1803.04626): contextual loss on VGG19 conv3_4 plus a pixel loss",
        notes="lossnet reads relu3_4 (the ReLU after conv3_4: contextual similarity needs the non-negative "
        "features its cosine is meant for). The paper's pixel term is an L2 on low frequencies "
        "(downsampled images); lossnet's is an L1 on the full images, and its weights (contextual 0.1, "
        "pixel 1) are lossnet's starting point, not numbers checked against the authors' code.",
    ),
}


def get_preset(name: str) -> Preset:
    """Return the :class:`Preset` called ``name``; an unknown name lists the valid ones."""
    return PRESETS[check_choice(name, list(PRESETS), "preset")]


def perceptual_loss_from_preset(
    name: str, weights: str | os.PathLike[str] | None = "auto", **overrides: Any
) -> PerceptualLoss:
    """Build a :class:`PerceptualLoss` from a preset; keyword arguments override its fields.

    Args:
        name: a preset of :data:`PRESETS`.
        weights: as :class:`PerceptualLoss`'s; the default ``"auto"`` loads ImageNet's where they can be
            had, else HED's VGG16, and logs which.
        overrides: :class:`PerceptualLoss` arguments that replace the preset's.

    Example:
        >>> loss = perceptual_loss_from_preset("johnson2016_superres", weights=None)
        >>> loss.feature_layers
        {'relu2_2': 1.0}
    """
    return PerceptualLoss(weights=weights, **{**get_preset(name).kwargs(), **overrides})


def _table_presets() -> dict[str, Preset]:
    """The presets that the table of term families declares with their families (a new family's own recipe)."""
    return {name: Preset(**spec) for family in FAMILIES.values() for name, spec in family.presets.items()}


PRESETS |= _table_presets()
