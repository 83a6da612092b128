"""The style images of a run: one for ``style``, several (files, folders, default names) for a multi-style task.

``--style-image`` names a default image (``lossnet.data.DEFAULT_IMAGES``) or an image file; a
multi-style task (:attr:`lossnet.tasks.Task.multi_style`) takes it several times, or a folder,
whose images (sorted by path) are its styles in that order.

>>> style_sources(["brick", "ihc"])
['brick', 'ihc']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from lossnet.data.defaults import DEFAULT_IMAGES, default_image_path
from lossnet.data.io import IMAGE_SUFFIXES, load_image, resize_longer_side
from lossnet.data.walk import find_images
from lossnet.errors import InputError
from lossnet.functional.adain import ADAIN_EPS, channel_statistics, recolour


def style_sources(style_image: str | Sequence[str], folders: bool = True) -> list[str]:
    """The style images ``style_image`` names, in order: each a default image name or a file.

    Args:
        style_image: a name, a file or a folder, or a list of them.
        folders: expand a folder into its images (sorted); otherwise a folder is an error.

    Raises:
        InputError: a folder where one image is needed, a folder without images, or no name at all.
    """
    names = [style_image] if isinstance(style_image, str) else list(style_image)
    fix = f"give one image file, or a default image: {', '.join(DEFAULT_IMAGES)}"
    out: list[str] = []
    for name in names:
        if name not in DEFAULT_IMAGES and Path(name).is_dir():
            if not folders:
                raise InputError(f"--style-image {name} is a folder; {fix}")
            found = sorted(find_images(name, IMAGE_SUFFIXES)[0])
            if not found:
                raise InputError(f"--style-image {name}: the folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
            out += [str(p) for p in found]
        else:
            out.append(name)
    if not out:
        raise InputError(f"no style image; {fix}")
    return out


def load_style(name: str, size: int) -> tuple[torch.Tensor, str]:
    """One style image ``(1, 3, H, W)`` in [0, 1], longer side ``size``, and where it came from.

    Raises:
        InputError: not a default image name nor a readable image file (named as ``--style-image``).
    """
    if name in DEFAULT_IMAGES:
        path = default_image_path(name)
    else:
        path = Path(name)
        if path.is_dir():
            raise InputError(f"--style-image {name} is a folder; give one image file, or a default image")
        if not path.is_file():
            raise InputError(
                f"--style-image {name}: no such image file; give one image file, or a default image: "
                f"{', '.join(DEFAULT_IMAGES)}"
            )
    try:
        image = load_image(path)
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # a non-image, a decompression bomb
        raise InputError(f"--style-image {name}: {err}") from None
    source = f"default {name!r} (scikit-image)" if name in DEFAULT_IMAGES else str(path)
    return resize_longer_side(image, size), source


def load_styles(style_image: str | Sequence[str], size: int, several: bool) -> list[tuple[torch.Tensor, str]]:
    """Every style image of a run, loaded (see :func:`load_style`); ``several=False`` allows exactly one."""
    sources = style_sources(style_image, folders=several)
    if not several and len(sources) > 1:
        raise InputError(
            f"this task trains one style and got {len(sources)} style images ({', '.join(sources)}); "
            "give one --style-image, or train style_multi for several in one network"
        )
    return [load_style(name, size) for name in sources]


class StylePalette:
    """The style images' RGB colours, per channel: a content target recoloured to them (``--recolour-target``).

    A fast style network trained against its content keeps the content's colours: the content terms (pixel,
    feature) pull every pixel back to them, which the style terms cannot outweigh without losing the layout.
    Recoloured, the target keeps the content's layout in the style's palette: each RGB channel of each target
    gets the mean and standard deviation of the same channel of its item's style image (AdaIN on pixels,
    :func:`~lossnet.functional.adain.recolour`), clamped to [0, 1]. ``lossnet stylize`` starts
    from the same image (``--init recoloured``).

    Args:
        styles: the run's style images, each ``(1, 3, H, W)`` in [0, 1].

    Example:
        >>> palette = StylePalette([torch.full((1, 3, 4, 4), 0.25), torch.rand(1, 3, 4, 4)])
        >>> target = torch.rand(2, 3, 8, 8)
        >>> out = palette.recolour(target, torch.tensor([0, 1]))
        >>> out.shape, round(float(out[0].mean()), 3)  # item 0 takes style 0's flat grey
        (torch.Size([2, 3, 8, 8]), 0.25)
    """

    def __init__(self, styles: Sequence[torch.Tensor]) -> None:
        if not styles:
            raise InputError("recolouring the target needs the run's style images; this task has none")
        stats = [channel_statistics(s.float(), ADAIN_EPS) for s in styles]
        self.mean = torch.cat([m for m, _ in stats])  # (S, 3)
        self.std = torch.cat([s for _, s in stats])

    def recolour(self, target: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``target`` ``(B, 3, H, W)`` in [0, 1] with each item's style's colours (``index`` ``(B,)``; ``None``:
        the first style for every item), same shape, in [0, 1], float32."""
        pick = torch.zeros(target.shape[0], dtype=torch.long) if index is None else index.cpu()
        mean, std = self.mean[pick].to(target.device), self.std[pick].to(target.device)
        return recolour(target, mean, std)


def unchanged_target(target: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """The target as it is: :meth:`StylePalette.recolour`'s stand-in when the run does not recolour."""
    return target
