"""Image degradations: what a restoration network learns to undo.

All take and return ``(B, C, H, W)`` in [0, 1].
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lossnet.data.io import to_pil
from lossnet.errors import InputError
from lossnet.validation import check_choice, check_image


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Antialiased bicubic downscale by an integer ``factor`` (H and W must divide by it)."""
    check_image(x, "image")
    h, w = x.shape[-2:]
    if factor < 1 or h % factor or w % factor:
        raise InputError(f"downscale by {factor} needs H and W divisible by it; got {h}x{w}. Crop the image first.")
    out = F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)


def upscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic upscale by an integer ``factor``: the classic super-resolution baseline."""
    out = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)
    return out.clamp_(0.0, 1.0)


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip every image through Pillow's JPEG encoder at ``quality`` (1-95)."""
    check_image(x, "image")
    out = []
    for img in x:
        buf = io.BytesIO()
        to_pil(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as im:
            arr = np.asarray(im.convert("RGB" if img.shape[0] == 3 else "L"), dtype=np.float32) / 255.0
        t = torch.from_numpy(arr)
        out.append(t.permute(2, 0, 1) if t.ndim == 3 else t.unsqueeze(0))
    return torch.stack(out).to(x.device, x.dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflection padding."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gaussian_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma`` (reproducible with ``seed``), clamped to [0, 1]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float32).to(x.device, x.dtype)
    return (x + sigma * noise).clamp_(0.0, 1.0)


#: Named degradations for the CLI and the demo: name -> (description, function).
DEGRADATIONS = {
    "bicubic_x4": ("x4 bicubic down and up", lambda x: upscale(downscale(x, 4), 4)),
    "jpeg_q10": ("JPEG quality 10", lambda x: jpeg_compress(x, 10)),
    "blur_s2": ("Gaussian blur, sigma 2 px", lambda x: gaussian_blur(x, 2.0)),
    "noise_0.1": ("Gaussian noise, sigma 0.1", lambda x: gaussian_noise(x, 0.1)),
}


def degrade(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the named degradation from :data:`DEGRADATIONS`."""
    return DEGRADATIONS[check_choice(name, list(DEGRADATIONS), "degradation")][1](x)
