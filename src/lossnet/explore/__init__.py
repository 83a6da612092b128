"""Tools for looking at what a loss network sees and for choosing its layers and weights.

Difference maps and contact sheets; image optimisation (:func:`stylize`, :func:`invert`),
activation maps, weight sweeps and the self-contained HTML report. The ``run_*`` functions
(:mod:`lossnet.explore.commands`) are the ``lossnet`` explore subcommands from files to files.
"""

from lossnet.explore.activations import ChannelMap, activation_maps, activation_sheet
from lossnet.explore.curve import loss_curve
from lossnet.explore.inputs import LoadedInput, load_input
from lossnet.explore.invert import InversionResult, InvertConfig, Reconstruction, inversion_sheet, invert
from lossnet.explore.maps import feature_difference_maps
from lossnet.explore.objective import ImageObjective
from lossnet.explore.optimize import OptimizeConfig, OptimizeResult, optimize_image
from lossnet.explore.report import Report, ReportConfig, build_report, render_screenshot, write_report
from lossnet.viz import Cell, contact_sheet, heatmap, overlay
from lossnet.explore.stylize import StylizeConfig, StylizeResult, stylize
from lossnet.explore.sweep import SweepCell, SweepResult, sweep, sweep_models, sweep_sheet
from lossnet.explore.commands import (
    CommandRun,
    Setup,
    run_activations,
    run_invert,
    run_report,
    run_stylize,
    run_sweep,
)

__all__ = [
    "Cell",
    "ChannelMap",
    "CommandRun",
    "ImageObjective",
    "InversionResult",
    "InvertConfig",
    "LoadedInput",
    "OptimizeConfig",
    "OptimizeResult",
    "Reconstruction",
    "Report",
    "ReportConfig",
    "Setup",
    "StylizeConfig",
    "StylizeResult",
    "SweepCell",
    "SweepResult",
    "activation_maps",
    "activation_sheet",
    "build_report",
    "contact_sheet",
    "feature_difference_maps",
    "heatmap",
    "invert",
    "inversion_sheet",
    "load_input",
    "loss_curve",
    "optimize_image",
    "overlay",
    "render_screenshot",
    "run_activations",
    "run_invert",
    "run_report",
    "run_stylize",
    "run_sweep",
    "stylize",
    "sweep",
    "sweep_models",
    "sweep_sheet",
    "write_report",
]
