"""Tools for looking at what a loss network sees: difference maps and labelled contact sheets."""

from lossnet.explore.maps import feature_difference_maps
from lossnet.explore.sheet import Cell, contact_sheet, heatmap

__all__ = ["Cell", "contact_sheet", "feature_difference_maps", "heatmap"]
