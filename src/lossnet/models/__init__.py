"""Image-transformation networks to train with perceptual losses.

- :class:`TransformerNet`: fast style transfer (Johnson, Alahi & Fei-Fei 2016).
- :class:`MultiStyleNet`: TransformerNet with conditional instance norm, several styles in one network
  (Dumoulin, Shlens & Kudlur 2017), picked by index or blended.
- :class:`SuperResNet`: x2 / x4 / x8 single-image super-resolution, residual over bicubic.
- :class:`UNet`: general image-to-image (colorisation, restoration) with ICNR pixel-shuffle upsampling.
- :class:`AdaINNet`: arbitrary style transfer (Huang & Belongie 2017): a frozen VGG encoder, AdaIN and a
  trained decoder; :class:`StyledAdaIN` binds it to its style images.
- :class:`Compact`: Real-ESRGAN's compact super-resolution network (SRVGGNetCompact), with the published
  weight names, so upscaler apps load it (:func:`compact_hyperparameters` reads its sizes from its weights).

Every network takes and returns images in a declared range, ``(0, 1)`` by default
(``output_range=(-1, 1)`` or ``(0, 255)`` otherwise), and raises
:class:`~lossnet.errors.InputError` on sizes it cannot map back to themselves.

>>> import torch
>>> from lossnet.models import TransformerNet
>>> TransformerNet(channels=4, num_residual=1)(torch.rand(1, 3, 16, 16)).shape
torch.Size([1, 3, 16, 16])
"""

from lossnet.models.adain import AdaIN, AdaINNet, StyledAdaIN
from lossnet.models.blocks import NORMS, ResidualBlock
from lossnet.models.compact import Compact, compact_hyperparameters
from lossnet.models.multi_style_net import MultiStyleNet, StyleChoice
from lossnet.models.registry import MODELS, build_model, model_spec
from lossnet.models.super_res_net import SCALES, SuperResNet
from lossnet.models.transformer_net import TransformerNet
from lossnet.models.unet import UNet
from lossnet.models.upsampling import PixelShuffleICNR, ResizeConv, icnr_
from lossnet.models.value_range import ScaledTanh

__all__ = [
    "MODELS",
    "NORMS",
    "SCALES",
    "AdaIN",
    "AdaINNet",
    "Compact",
    "MultiStyleNet",
    "PixelShuffleICNR",
    "ResidualBlock",
    "ResizeConv",
    "ScaledTanh",
    "StyleChoice",
    "StyledAdaIN",
    "SuperResNet",
    "TransformerNet",
    "UNet",
    "build_model",
    "compact_hyperparameters",
    "icnr_",
    "model_spec",
]
