"""One default for the loss network's weights everywhere: ``"auto"`` (DESIGN.md, "one owner per decision").

Every public function, class and method of every lossnet module is walked; each parameter that takes a
weights entry (``weights``, and the ``feature_weights`` / ``loss_weights`` of evaluation and training) and
has a default must default to ``"auto"``, so a new signature with another default fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator

import lossnet

#: Parameters that take a weights entry ("auto", "imagenet", "hed", a path or None).
WEIGHTS_PARAMETERS = {"weights", "feature_weights", "loss_weights"}
#: Modules not walked: the deprecated aliases only re-export (and warn on import); ``__main__`` runs the CLI.
SKIPPED_MODULES = {"lossnet.apply", "lossnet.evaluate", "lossnet.__main__"}
#: Records of weights already used, not choices of weights to load: their field holds an id or a note.
RECORDS = {
    "lossnet.checkpoint.ModelInfo": "loss_weights: what a checkpoint's training used, read back (None when unknown)",
    "lossnet.checkpoint.model_meta": "loss_weights: what the training used, written into the checkpoint",
    "lossnet.explore.report.Report": "weights: the id of the weights the report's network loaded",
}


def _public_callables() -> Iterator[tuple[str, Callable[..., object]]]:
    seen: set[str] = set()
    for info in pkgutil.walk_packages(lossnet.__path__, "lossnet."):
        if info.name in SKIPPED_MODULES:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("lossnet"):
                continue
            members = [(f"{obj.__module__}.{obj.__qualname__}", obj)]
            if inspect.isclass(obj):
                members += [
                    (f"{obj.__module__}.{obj.__qualname__}.{m}", f)
                    for m, f in vars(obj).items()
                    if not m.startswith("_") and inspect.isfunction(f)
                ]
            for qualname, member in members:
                if qualname not in seen:
                    seen.add(qualname)
                    yield qualname, member


def _weights_defaults() -> dict[str, object]:
    found = {}
    for qualname, member in _public_callables():
        try:
            parameters = inspect.signature(member).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        for p in parameters:
            if p.name in WEIGHTS_PARAMETERS and p.default is not inspect.Parameter.empty:
                found[f"{qualname}({p.name}=)"] = p.default
    return found


def test_every_weights_parameter_defaults_to_auto() -> None:
    defaults = _weights_defaults()
    checked = {k: v for k, v in defaults.items() if k.split("(")[0] not in RECORDS}
    wrong = {k: v for k, v in checked.items() if v != "auto"}
    assert not wrong, f"weights defaults other than 'auto': {wrong}"
    # the walk does reach the library's entry points (so an empty walk cannot pass)
    for expected in (
        "lossnet.backbones.extractor.FeatureExtractor(weights=)",
        "lossnet.losses.perceptual.PerceptualLoss(weights=)",
        "lossnet.losses.calibrated.LPIPSLoss(weights=)",
        "lossnet.losses.calibrated.DISTSLoss(weights=)",
        "lossnet.losses.presets.perceptual_loss_from_preset(weights=)",
        "lossnet.metrics.lpips_metric.LPIPS(weights=)",
        "lossnet.metrics.lpips_metric.lpips(weights=)",
        "lossnet.metrics.feature.FeatureDistance(weights=)",
        "lossnet.explore.sweep.sweep(weights=)",
        "lossnet.explore.sweep.sweep_models(weights=)",
        "lossnet.evaluation.run.evaluate(feature_weights=)",
        "lossnet.train.config.TrainConfig(loss_weights=)",
    ):
        assert expected in checked, expected
    # the exempt records are still there (a stale entry would hide nothing, but says the list is out of date)
    assert {k.split("(")[0] for k in defaults} >= set(RECORDS)


def test_the_cli_default_is_the_librarys() -> None:
    from lossnet.cli.common import WEIGHTS_DEFAULT

    assert WEIGHTS_DEFAULT == "auto"
