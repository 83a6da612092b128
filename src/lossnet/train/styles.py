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
