from __future__ import annotations

import numpy as np
import torch

from lossnet.viz import Cell, contact_sheet, heatmap


def test_heatmap_ramp_endpoints_and_size() -> None:
    v = torch.tensor([[0.0, 1.0], [0.5, 2.0]])
    rgb = heatmap(v, size=(4, 4), vmax=2.0)
    assert rgb.shape == (1, 3, 4, 4)
    assert rgb[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]  # zero is black
    assert rgb[0, :, 3, 3].tolist() == [1.0, 1.0, 1.0]  # the maximum is white
    assert heatmap(torch.zeros(3, 3)).abs().max() == 0  # all-zero input stays black, no division by zero


def test_contact_sheet_places_images_and_fits_cells() -> None:
    red = torch.zeros(1, 3, 40, 80)
    red[:, 0] = 1
    sheet = contact_sheet([[Cell(red, "a"), Cell(red, "b")], [Cell(red, "c")]], cell_size=50, title="t")
    assert sheet.size == (2 * 56 + 6, 24 + 2 * (50 + 18 + 6) + 6)
    pixels = np.asarray(sheet)
    # The first cell's centre is red; the empty second cell of row 2 stays white.
    assert tuple(pixels[24 + 6 + 25, 6 + 25]) == (255, 0, 0)
    assert tuple(pixels[24 + 6 + 74 + 25, 6 + 56 + 25]) == (255, 255, 255)


def test_long_captions_wrap_inside_their_cell() -> None:
    """A caption wider than its cell wraps (at spaces, or inside a long word) instead of running into the next."""
    grey = torch.full((1, 3, 50, 50), 0.5)
    long = "x4 bicubic down and up, 22.8 dB"
    word = "a" * 40
    rows = [[Cell(grey, long), Cell(grey, "relu1_2  1.81e+03")], [Cell(grey, word), Cell(grey, "b")]]
    sheet = contact_sheet(rows, 50)
    pixels = np.asarray(sheet)
    # Every row has room for the most lines: the long word takes the most.
    assert sheet.size[1] > 2 * (50 + 18 + 6) + 6
    # The gutter between the two columns (x in 56..62) stays white all the way down.
    assert (pixels[:, 6 + 50 : 6 + 56] == 255).all()
    # Nothing is drawn beyond the second column's right edge but its own caption.
    assert (pixels[:, 2 * 56 :] == 255).all()
