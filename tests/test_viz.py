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
    # 40 x 80 fits a 50 px cell as 25 x 50: each row is 25 px of image, an 18 px caption and 6 px of padding.
    assert sheet.size == (2 * 56 + 6, 24 + 2 * (25 + 18 + 6) + 6)
    pixels = np.asarray(sheet)
    # The first cell is red edge to edge; the empty second cell of row 2 stays white.
    assert (pixels[24 + 6 : 24 + 6 + 25, 6 : 6 + 50] == (255, 0, 0)).all()
    assert tuple(pixels[24 + 6 + 49 + 12, 6 + 56 + 25]) == (255, 255, 255)
    # The caption starts right under the image, not under an empty band.
    assert (pixels[24 + 6 + 25 + 3 : 24 + 6 + 25 + 18, 6 : 6 + 50] != 255).any()


def test_a_row_is_as_tall_as_its_tallest_image_and_smaller_ones_are_centred() -> None:
    wide, tall = torch.zeros(1, 3, 10, 50), torch.zeros(1, 3, 50, 25)
    sheet = contact_sheet([[Cell(wide, "a")], [Cell(wide, "b"), Cell(tall, "c")]], cell_size=50)
    assert sheet.size[1] == (10 + 18 + 6) + (50 + 18 + 6) + 6
    pixels = np.asarray(sheet)
    row2 = 6 + 10 + 18 + 6
    assert (pixels[row2 + 20 : row2 + 30, 6 : 56] == 0).all()  # the wide image, centred in the 50 px row
    assert (pixels[row2 : row2 + 20, 6 : 56] == 255).all()
    assert (pixels[row2 : row2 + 50, 62 + 12 : 62 + 37] == 0).all()  # the tall one fills it


def test_each_row_leaves_room_for_its_own_captions_only() -> None:
    """One three-line caption does not add two empty lines under every other row."""
    grey = torch.full((1, 3, 50, 50), 0.5)
    sheet = contact_sheet([[Cell(grey, "a"), Cell(grey, "b")], [Cell(grey, "c\nd\ne")], [Cell(grey, "f")]], 50)
    assert sheet.size[1] == 3 * (50 + 18 + 6) + 2 * 14 + 6
    pixels = np.asarray(sheet)
    assert tuple(pixels[6 + 74 + 25, 6 + 25]) == (128, 128, 128)  # row 2's image right under row 1's one-line caption
    assert tuple(pixels[6 + 74 + (74 + 28) + 25, 6 + 25]) == (128, 128, 128)  # row 3's under row 2's three lines


def test_long_captions_wrap_inside_their_cell() -> None:
    """A caption wider than its cell wraps (at spaces, or inside a long word) instead of running into the next."""
    grey = torch.full((1, 3, 50, 50), 0.5)
    long = "x4 bicubic down and up, 22.8 dB"
    word = "a" * 40
    rows = [[Cell(grey, long), Cell(grey, "relu1_2  1.81e+03")], [Cell(grey, word), Cell(grey, "b")]]
    sheet = contact_sheet(rows, 50)
    pixels = np.asarray(sheet)
    # The long word's row has room for all its lines.
    assert sheet.size[1] > 2 * (50 + 18 + 6) + 6
    # The gutter between the two columns (x in 56..62) stays white all the way down.
    assert (pixels[:, 6 + 50 : 6 + 56] == 255).all()
    # Nothing is drawn beyond the second column's right edge but its own caption.
    assert (pixels[:, 2 * 56 :] == 255).all()
